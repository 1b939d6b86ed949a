"""The app's routes as the router serves them, so that tests of "every page" and "every form"
find a new page without anyone adding it to a list."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import fastapi.routing
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from hub.web.pages import PageRoute, citizen_page, staff_page

Audience = Literal["anyone", "citizen", "staff"]


@dataclass(frozen=True)
class Served:
    path: str
    methods: frozenset[str]
    route: APIRoute


def served_routes(app: FastAPI) -> Iterator[Served]:
    """Every API route with the path it is served at (included routers flattened)."""
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    if contexts is None:  # FastAPI before included routers were kept as branches
        for route in app.routes:
            if isinstance(route, APIRoute):
                yield Served(route.path, frozenset(route.methods or ()), route)
        return
    for context in contexts(app.routes):
        original = context.original_route
        if isinstance(original, APIRoute) and context.path:
            yield Served(context.path, frozenset(context.methods or ()), original)


def concrete_path(served: Served, values: dict[str, str]) -> str:
    """The route's path with its parameters filled in from ``values``; a parameter without
    a value fails the test, so that a new page cannot go unchecked."""
    path = served.path
    for parameter in served.route.dependant.path_params:
        assert parameter.name in values, f"give the tests a value for {{{parameter.name}}}"
        path = path.replace(f"{{{parameter.name}}}", values[parameter.name])
    return path


def html_pages(app: FastAPI) -> list[Served]:
    """Every GET route whose answer is an HTML page."""
    return [
        served
        for served in served_routes(app)
        if "GET" in served.methods
        and getattr(served.route.response_class, "media_type", None) == "text/html"
    ]


def page_forms(app: FastAPI) -> list[Served]:
    """Every page route a form posts to."""
    return [
        served
        for served in served_routes(app)
        if "POST" in served.methods and isinstance(served.route, PageRoute)
    ]


def _calls(dependant: Dependant) -> Iterator[object]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _calls(dependency)


def audience(route: APIRoute) -> Audience:
    """Who may see the page, from the login its route depends on."""
    calls = set(_calls(route.dependant))
    if staff_page in calls:
        return "staff"
    if citizen_page in calls:
        return "citizen"
    return "anyone"
