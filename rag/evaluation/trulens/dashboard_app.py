"""Streamlit entry point: TruLens' dashboard with its page icon served locally.

TruLens sets ``page_icon`` to an image URL on trulens.org, so every page load would make the
user's browser contact that host. This script swaps in the icon that ships inside the package
and then runs TruLens' own ``main.py`` unchanged.

The database URL comes from the environment, not the command line, which every user can read in
``ps`` and which would show a PostgreSQL password; TruLens reads it from ``sys.argv`` in-process.
"""

import os
import runpy
import sys

import streamlit as st
from trulens.dashboard import main as trulens_main

_set_page_config = st.set_page_config


def _set_page_config_locally(*args, **kwargs):
    icon = kwargs.get("page_icon")
    if isinstance(icon, str) and icon.startswith(("http://", "https://")):
        from trulens.core.utils.imports import static_resource

        kwargs["page_icon"] = str(static_resource("dashboard", "ux/trulens_squid.svg"))
    return _set_page_config(*args, **kwargs)


st.set_page_config = _set_page_config_locally
_url = os.environ.pop("RAG_DASHBOARD_DATABASE_URL", None)  # dashboard.DATABASE_URL_ENV (not imported: slow)
if _url:
    sys.argv += ["--database-url", _url]
runpy.run_path(trulens_main.__file__, run_name="__main__")
