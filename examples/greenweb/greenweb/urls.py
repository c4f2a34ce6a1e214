"""URL routes of greenweb: the index plus the catalog app's API and I/O endpoints."""

from django.urls import include, path

from catalog import views

urlpatterns = [
    path("", views.index, name="index"),
    path("", include("catalog.urls")),
]
