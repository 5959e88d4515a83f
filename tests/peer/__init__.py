"""
The cncf-kubernetes provider's own task-log tests, run once with stock Airflow and once with our handler.

``scripts/provider_tests.sh`` fetches the provider's sdist (pinned by version and sha256 in scripts/lib.sh),
runs the selected test ids twice on the primary cell, and ``compare.py`` says what differs. The tests import
``tests_common`` (Airflow's devel-common), which is not published in a usable form: ``tests_common/`` here is our
own stand-in with the few names those tests use. ``plugin.py`` switches the read path to ours.
"""
