"""Which studies of a storage make up a campaign: the campaign lives in its studies' attributes.

A campaign adds no study of its own: each of its per-study studies carries the user attr
``campaigns`` = ``{campaign name: campaign spec}`` (:data:`search.campaign.spec.CAMPAIGN_ATTR`), so a
storage may hold several campaigns, a study may belong to more than one, and every per-study command
(``status``, ``resume``, ``export``, ``report``) keeps working on them.
"""
from __future__ import annotations

from typing import Any

import optuna

from search.campaign.spec import CAMPAIGN_ATTR, CampaignSpec, campaign_from_values
from search.errors import StudyError
from search.storage import list_studies

__all__ = ["tag_member", "campaign_names", "find_campaign"]


def tag_member(study: optuna.Study, spec: CampaignSpec) -> None:
    """Record on ``study`` that it belongs to the campaign ``spec`` (its spec replaces an older one)."""
    campaigns = dict(study.user_attrs.get(CAMPAIGN_ATTR) or {})
    campaigns[spec.name] = spec.to_attr()
    study.set_user_attr(CAMPAIGN_ATTR, campaigns)


def _campaigns_of(summary: Any) -> dict[str, Any]:
    attrs = summary.user_attrs.get(CAMPAIGN_ATTR)
    return attrs if isinstance(attrs, dict) else {}


def campaign_names(storage: optuna.storages.BaseStorage) -> list[str]:
    """The names of every campaign with a study in ``storage``, sorted."""
    return sorted({name for summary in list_studies(storage) for name in _campaigns_of(summary)})


def find_campaign(storage: optuna.storages.BaseStorage, name: str, *, where: str) -> tuple[CampaignSpec, list[str]]:
    """The stored spec of campaign ``name`` and its studies' names (campaign order: datasets, then modes).

    The spec is the one stored by the latest launch or resume (every member holds the same one).
    StudyError naming ``where`` and the campaigns there when ``name`` has no study in ``storage``.
    """
    members: dict[str, dict[str, Any]] = {}
    for summary in list_studies(storage):
        stored = _campaigns_of(summary).get(name)
        if isinstance(stored, dict):
            members[summary.study_name] = stored
    if not members:
        known = ", ".join(campaign_names(storage)) or "none"
        raise StudyError(f"no campaign {name!r} in {where} (campaigns there: {known})")
    stored = next(iter(members.values()))
    values = {key: value for key, value in stored.items() if value is not None and key != "storage"}
    spec = campaign_from_values(values, f"campaign {name} in {where}")
    order = {name: k for k, name in enumerate(spec.study_names)}
    return spec, sorted(members, key=lambda study: (order.get(study, len(order)), study))
