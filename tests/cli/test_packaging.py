"""`pip install .` gives the `insignia` command, with the same pinned dependencies."""

import tomllib

from harness import ROOT


def test_the_package_installs_the_insignia_command_and_the_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"] == {"insignia": "app.cli:main"}
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    pins = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert project["project"]["dependencies"] == pins
    setuptools = project["tool"]["setuptools"]
    assert setuptools["py-modules"] == ["main"]
    assert setuptools["packages"]["find"]["include"] == ["app", "app.*"]
    assert setuptools["dynamic"]["version"] == {"attr": "app.__version__"}


def test_the_package_carries_its_migrations_and_dashboard_files():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data = project["tool"]["setuptools"]["package-data"]["app"]
    shipped = {path for pattern in data for path in (ROOT / "app").glob(pattern)}
    assert ROOT / "app" / "schema" / "env.py" in shipped
    assert set((ROOT / "app" / "schema" / "versions").glob("*.py")) <= shipped
    assert set((ROOT / "app" / "ui" / "templates").glob("*.html")) <= shipped
    assert set((ROOT / "app" / "ui" / "static").glob("*")) <= shipped
