"""Moved to :mod:`tierctl.daily.owners`."""

# moved: shim for the parallel redesign, removed at merge
from tierctl.daily.owners import *  # noqa: F403
from tierctl.daily.owners import (  # noqa: F401
    ADVISOR,
    PERSON,
    known_people,
    owner_mask,
    person_of,
    role_names,
    with_person,
)
