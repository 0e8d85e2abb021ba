from django.http import HttpRequest, HttpResponse

from visits.models import Visit


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse("Hello from Kapal (Django)\n", content_type="text/plain")


def visits(request: HttpRequest) -> HttpResponse:
    """Each visit writes a row; the answer is how many there are now."""
    Visit.objects.create()
    return HttpResponse(str(Visit.objects.count()), content_type="text/plain")
