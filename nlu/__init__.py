"""Rasa training data and the project's custom NLU components (run inside .venv-rasa)."""
