"""The FastAPI service that CRMs call."""
