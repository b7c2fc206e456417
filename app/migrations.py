"""Apply the Alembic migrations from code, as the service does on start.

The migrations live inside the package (`app/schema/`), so that an installed service (`pip
install .`, then `insignia`) carries them; the root `alembic.ini` points there for running
`alembic` by hand.
"""

from pathlib import Path

from alembic import command
from alembic.config import Config

SCRIPT_LOCATION = Path(__file__).resolve().parent / "schema"


def alembic_config(url: str) -> Config:
    """An Alembic config for this project's migrations against `url`."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    # ConfigParser treats % as interpolation; URLs may contain percent-escapes.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["skip_logging_config"] = True
    return config


def upgrade_database(url: str) -> None:
    """Bring the database at `url` to the latest schema (safe to run from several replicas)."""
    command.upgrade(alembic_config(url), "head")
