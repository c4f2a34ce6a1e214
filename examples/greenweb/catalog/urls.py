"""URL routes of the catalog app."""

from django.urls import path

from . import views

urlpatterns = [
    path("api/status/", views.status, name="status"),
    path("api/plants/", views.plant_list, name="plant-list"),
    path("api/plants/<int:pk>/", views.plant_detail, name="plant-detail"),
    path("api/slow/", views.slow, name="slow"),
    path("upload/", views.upload, name="upload"),
    path("stream/", views.stream, name="stream"),
    path("download/", views.download, name="download"),
]
