"""Retraining with MLflow: tracked runs, the model registry, promotion of a champion."""
