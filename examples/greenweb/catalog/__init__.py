"""catalog: the greenweb app with the plant API and the streaming and upload endpoints."""
