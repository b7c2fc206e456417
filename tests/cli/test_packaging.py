"""`pip install .` gives the `insignia` command, with the same pinned dependencies."""

import tomllib

from tests.support import ROOT


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
