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

__all__ = ["START_HINT", "tag_member", "campaign_names", "only_campaign", "find_campaign", "refuse_changed_relaunch"]

#: What an error about a storage that holds no campaign adds: how to start one, or where else to look.
START_HINT = ("start one with: are-search campaign launch --datasets A,B --checkpoint fusion (or a spec: "
              "are-search campaign launch campaigns/local-six.yaml), or pass the --storage that holds yours")


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


def only_campaign(storage: optuna.storages.BaseStorage, *, where: str) -> str:
    """The name of the one campaign with a study in ``storage`` (a command given no campaign name uses it).

    StudyError naming ``where`` when the storage holds no campaign, or naming every campaign there (so
    the user can pick one) when it holds several.
    """
    names = campaign_names(storage)
    if len(names) == 1:
        return names[0]
    if not names:
        raise StudyError(f"no campaign in {where}; {START_HINT}")
    raise StudyError(f"{where} holds {len(names)} campaigns: name one of {', '.join(names)}")


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
        known = ", ".join(campaign_names(storage))
        raise StudyError(f"no campaign {name!r} in {where} (campaigns there: {known})" if known
                         else f"no campaign {name!r} in {where} (campaigns there: none); {START_HINT}")
    stored = next(iter(members.values()))
    values = {key: value for key, value in stored.items() if value is not None and key != "storage"}
    spec = campaign_from_values(values, f"campaign {name} in {where}")
    order = {name: k for k, name in enumerate(spec.study_names)}
    return spec, sorted(members, key=lambda study: (order.get(study, len(order)), study))


def refuse_changed_relaunch(storage: optuna.storages.BaseStorage, spec: CampaignSpec, *, where: str) -> None:
    """Refuse a launch of campaign ``spec.name`` that changes the (dataset, mode) studies the campaign stored in
    ``storage`` has: the stored spec would stay on some members and the new one land on others. A campaign not
    in the storage yet, or the same studies, pass. StudyError (one line) naming the campaign, ``where``, the
    studies added and dropped, and what to do instead (a new ``--name``, or ``campaign resume``)."""
    if spec.name not in campaign_names(storage):
        return
    stored, _ = find_campaign(storage, spec.name, where=where)
    before, now = stored.study_names, spec.study_names
    if set(before) == set(now):
        return
    changes = []
    added = [name for name in now if name not in before]
    dropped = [name for name in before if name not in now]
    if added:
        changes.append("adds " + ", ".join(added))
    if dropped:
        changes.append("drops " + ", ".join(dropped))
    raise StudyError(f"campaign {spec.name!r} in {where} has other datasets or modes (this launch "
                     f"{'; '.join(changes)}): launch it under a new --name, or continue it as it is with "
                     f"are-search campaign resume {spec.name}")
