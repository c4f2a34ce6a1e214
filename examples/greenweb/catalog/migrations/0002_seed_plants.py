"""Data migration: seed the catalog with 20 plants so the API has data right after migrate."""

import datetime

from django.db import migrations

PLANTS = [
    ("Monstera", "Monstera deliciosa", 500),
    ("Snake plant", "Dracaena trifasciata", 150),
    ("Pothos", "Epipremnum aureum", 300),
    ("Fiddle-leaf fig", "Ficus lyrata", 600),
    ("Peace lily", "Spathiphyllum wallisii", 450),
    ("ZZ plant", "Zamioculcas zamiifolia", 120),
    ("Spider plant", "Chlorophytum comosum", 350),
    ("Rubber plant", "Ficus elastica", 400),
    ("Aloe", "Aloe vera", 100),
    ("Boston fern", "Nephrolepis exaltata", 700),
    ("Chinese money plant", "Pilea peperomioides", 250),
    ("Jade plant", "Crassula ovata", 110),
    ("Heartleaf philodendron", "Philodendron hederaceum", 300),
    ("Calathea", "Goeppertia orbifolia", 500),
    ("Bird of paradise", "Strelitzia reginae", 800),
    ("English ivy", "Hedera helix", 300),
    ("Cast-iron plant", "Aspidistra elatior", 200),
    ("Parlor palm", "Chamaedorea elegans", 450),
    ("String of pearls", "Curio rowleyanus", 90),
    ("Basil", "Ocimum basilicum", 650),
]
SEEDED_AT = datetime.datetime(2025, 4, 1, 9, 0, tzinfo=datetime.timezone.utc)


def seed(apps, schema_editor):
    Plant = apps.get_model("catalog", "Plant")
    Plant.objects.bulk_create(
        Plant(
            name=name,
            species=species,
            water_ml=water_ml,
            created=SEEDED_AT + datetime.timedelta(days=i),
        )
        for i, (name, species, water_ml) in enumerate(PLANTS)
    )


def unseed(apps, schema_editor):
    Plant = apps.get_model("catalog", "Plant")
    Plant.objects.filter(name__in=[name for name, _, _ in PLANTS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(seed, unseed),
    ]
