"""Database migrations of the catalog app."""
