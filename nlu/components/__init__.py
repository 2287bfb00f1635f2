"""Custom Rasa NLU components: language detection, Seoul gazetteer, sentence classifiers.

Rasa imports this package when it loads the model, which is where nlu.rasa_patches is applied.
"""

from nlu import rasa_patches

rasa_patches.apply()
