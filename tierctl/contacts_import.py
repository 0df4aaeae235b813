"""Moved to :mod:`tierctl.daily.contacts` (the model: :mod:`tierctl.daily.contacts_model`)."""

# moved: shim for the parallel redesign, removed at merge
from tierctl.daily.contacts import *  # noqa: F403
from tierctl.daily.contacts import import_contacts, import_interventions, mark_segment  # noqa: F401
from tierctl.daily.contacts_model import load_contacts_model, minute_key, parse_when  # noqa: F401
