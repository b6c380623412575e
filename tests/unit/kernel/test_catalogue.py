"""The event catalogue: stable event names and their fields (services' aggregates as examples)."""

from __future__ import annotations

import pytest

from services.hr.domain.social_worker import SocialWorker
from services.registry.domain.institution import Institution
from shared.eventstore.catalogue import EventCatalogue


def test_the_catalogue_names_events_aggregate_dot_event_and_lists_fields() -> None:
    catalogue = EventCatalogue([("Institution", Institution), ("SocialWorker", SocialWorker)])
    assert catalogue.name_of(Institution.Registered) == "Institution.Registered"
    assert catalogue.class_of("Institution.Suspended") is Institution.Suspended
    assert catalogue.aggregate_class("Institution") is Institution

    specs = {spec.name: spec for spec in catalogue.specs()}
    # Among them (the registry keeps adding events of its own).
    assert set(specs) >= {
        "Institution.Registered",
        "Institution.Renamed",
        "Institution.MovedToUnit",
        "Institution.Suspended",
        "Institution.Reinstated",
        "Institution.Closed",
        "SocialWorker.Registered",
    }
    assert specs["Institution.Registered"].version == 2
    assert specs["Institution.Registered"].fields == {
        "name": "str",
        "kind": "InstitutionType",
        "owner": "Owner",
        "pdm": "str",
        "address": "str | None",
        "unit": "str | None",
    }
    assert specs["Institution.Renamed"].fields == {"name": "str"}
    assert specs["SocialWorker.Registered"].fields["birth_date"] == "date"


def test_the_catalogue_refuses_unknown_events_and_dotted_aggregate_names() -> None:
    catalogue = EventCatalogue([("Institution", Institution)])
    with pytest.raises(KeyError, match="not in the catalogue"):
        catalogue.name_of(SocialWorker.Registered)
    with pytest.raises(ValueError, match="must not contain a dot"):
        EventCatalogue([("registry.Institution", Institution)])
