"""Models of the catalog app: plants and how much water they need."""

from django.db import models
from django.utils import timezone


class Plant(models.Model):
    name = models.CharField(max_length=100, unique=True)
    species = models.CharField(max_length=200)
    water_ml = models.PositiveIntegerField(help_text="Water per week, in millilitres.")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.name

    def as_dict(self):
        return {
            "id": self.pk,
            "name": self.name,
            "species": self.species,
            "water_ml": self.water_ml,
            "created": self.created.isoformat(),
        }
