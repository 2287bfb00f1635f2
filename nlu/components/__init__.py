"""Custom Rasa NLU components: language detection, Seoul gazetteer, category classifier."""
