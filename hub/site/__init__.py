"""Presentation layer: the static leaderboard site (home, a page per dataset, model and benchmark), rendered
from a registry's catalog, cards and result records with the templates and assets in the repository's
``site/`` folder; no network at view time."""

from hub.site.build import build_site
from hub.site.serve import site_server

__all__ = ["build_site", "site_server"]
