"""The horizon step's sessions (issue 11: Horizon sent users back to the login page at random): Debian's
openstack-dashboard reads local_settings.py and then every snippet in local_settings.d in name order, and its own
_0006_debian_cache.py sets a per-process LocMemCache. The step's snippet must come later and win, as the
dashboard's settings.py applies them (exec in sorted order)."""

from __future__ import annotations

import re

from tests.conftest import ROOT

STEP = (ROOT / "steps" / "70-horizon.sh").read_text()
DEBIAN_SNIPPET = "_0006_debian_cache.py"
DEBIAN_CACHES = "CACHES = {'default': {'BACKEND': 'django.core.cache.backends.locmem.LocMemCache'}}\n"


def _snippet() -> tuple[str, str]:
    match = re.search(r"write_file /etc/openstack-dashboard/local_settings\.d/(\S+\.py) 0644 <<EOF2\n(.*?)\nEOF2\n",
                      STEP, re.S)
    assert match, "the horizon step writes no settings snippet into local_settings.d"
    return match.group(1), match.group(2).replace("$CONTROLLER_IP", "172.31.32.11")


def test_the_steps_snippet_is_applied_after_debians_locmem_cache_and_puts_sessions_in_memcached() -> None:
    name, text = _snippet()
    snippets = {DEBIAN_SNIPPET: DEBIAN_CACHES, name: text}
    settings: dict[str, object] = {}
    for snippet in sorted(snippets):  # openstack_dashboard/settings.py: sorted(filenames), exec each
        exec(snippets[snippet], {}, settings)
    assert settings["CACHES"] == {"default": {"BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
                                              "LOCATION": "172.31.32.11:11211"}}
    assert settings["SESSION_ENGINE"] == "django.contrib.sessions.backends.cache"


def test_the_step_checks_what_django_loaded_not_what_it_wrote() -> None:
    assert "DJANGO_SETTINGS_MODULE=openstack_dashboard.settings" in STEP
    assert "CACHES" not in STEP.split("# BEGIN openstack-aws")[1].split("# END openstack-aws")[0], (
        "CACHES in local_settings.py is overridden by Debian's snippet: it belongs in the step's snippet only")


def test_the_settings_are_loaded_as_the_dashboards_user_so_a_missing_secret_key_is_created_readable() -> None:
    # Loading the settings creates Horizon's secret key file; as root it became unreadable for Apache (HTTP 500).
    loads = [line for line in STEP.splitlines() if "DJANGO_SETTINGS_MODULE=openstack_dashboard.settings" in line]
    assert loads and all("runuser -u www-data" in line for line in loads), loads
    assert 'chown www-data:www-data "$key_store"' in STEP
