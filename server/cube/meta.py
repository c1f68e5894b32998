"""The model as Cube's ``/v1/meta`` describes cubes: one cube per source, its measures (the
metrics among them, as Cube's calculated ``number`` measures), dimensions and time dimension,
no segments."""

from __future__ import annotations

from typing import Any

from semantic.model import GRAINS
from server.cube.members import Cubes, humanize


def cube_meta(cubes: Cubes) -> dict[str, Any]:
    """Each cube is a connected component of its own: a query names one source (a source's
    joined dimensions are members of its cube, ``flights.airline__name``), so a client offers
    no member of another cube beside those already chosen."""
    described = []
    for component, (name, members) in enumerate(cubes.members.items(), start=1):
        source = cubes.sources[name].source
        measures: list[dict[str, Any]] = []
        dimensions: list[dict[str, Any]] = []
        for member in members.values():
            common: dict[str, Any] = {
                "name": member.key, "title": f"{humanize(name)} {humanize(member.name)}",
                "shortTitle": humanize(member.name),
                "description": member.description or None, "type": member.type,
                "isVisible": True, "public": True, "meta": member.meta}
            if member.kind == "measure":
                measures.append({**common, "aggType": member.agg_type, "cumulative": False,
                                 "cumulativeTotal": False, "drillMembers": [],
                                 "drillMembersGrouped": {"measures": [], "dimensions": []}})
            else:
                entry: dict[str, Any] = {**common, "suggestFilterValues": True,
                                         "primaryKey": member.primary_key, "aliasMember": None}
                if member.kind == "time":
                    entry["granularities"] = [
                        {"name": grain, "title": grain, "interval": f"1 {grain}",
                         "type": "built-in"} for grain in GRAINS]
                dimensions.append(entry)
        described.append({
            "name": name, "title": humanize(name), "description": source.description or None,
            "type": "cube", "isVisible": True, "public": True, "connectedComponent": component,
            "measures": measures, "dimensions": dimensions, "segments": [],
            "hierarchies": [], "folders": [], "nestedFolders": []})
    return {"cubes": described}
