"""The profile's colours and meanings: every kind of a picture told apart, and said what it is."""

from __future__ import annotations

import itertools
import re

from hpcingest.profile.palette import (ENGINE_KINDS, IRODS_KINDS, OTHER, color_difference, kind_color, kind_meaning,
                                       palette)
from hpcingest.profile.render import _legend_label
from tests.browser import rgb as _rgb


def test_fixed_colours_are_far_apart():
    fixed = list(ENGINE_KINDS) + [f"irods:{api}_AN" for api in IRODS_KINDS]
    colours = palette(fixed)
    assert all(re.fullmatch("#[0-9a-f]{6}", colour) for colour in colours.values())
    closest = min(color_difference(a, b) for a, b in itertools.combinations(colours.values(), 2))
    assert closest >= 20  # ΔE*ab; about 2.3 is just noticeable side by side


def test_every_kind_of_a_picture_is_distinguishable():
    """AUTHENTICATION_APN and GEN_QUERY_AN were hashed into one band of pinks, 5 ΔE apart."""
    from irods.api_number import api_number

    apis = ["irods:AUTHENTICATION_APN", "irods:GEN_QUERY_AN"] + [f"irods:{name}" for name in sorted(api_number)[:20]]
    kinds = list(dict.fromkeys(list(ENGINE_KINDS) + apis + ["mystery", "something-new"]))
    colours = palette(kinds)
    assert color_difference(colours["irods:AUTHENTICATION_APN"], colours["irods:GEN_QUERY_AN"]) >= 20
    closest = min(color_difference(colours[a], colours[b]) for a, b in itertools.combinations(kinds, 2))
    assert closest >= 20, closest
    assert palette(reversed(kinds)) == colours  # the same picture gets the same colours, whatever the order
    assert kind_color("something-new") == kind_color("something-new")
    assert sum(_rgb(kind_color(OTHER))) > 3 * 235  # very light: time nothing recorded


def test_every_kind_says_what_it_is():
    for kind in ("idle", "steal", "list", "stat", "sink", "state", "catalog", OTHER):
        assert len(kind_meaning(kind)) > 10
    assert "iRODS API request" in kind_meaning("irods:GEN_QUERY_AN")
    assert _legend_label("sink") == f"sink: {kind_meaning('sink')}"
