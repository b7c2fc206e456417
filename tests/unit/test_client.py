"""The delivery client's own check of IP literals, as aiohttp parses the URL."""

import pytest

from app.delivery.client import refuse_private_literal
from app.delivery.guard import UnsafeTargetError


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1/hook", "http://[::1]:8080/", "http://2130706433/x", "http://10.0.0.5/"],
)
def test_a_private_literal_is_refused(url):
    with pytest.raises(UnsafeTargetError, match="non-public"):
        refuse_private_literal(url)


@pytest.mark.parametrize(
    "url",
    ["https://8.8.8.8/hook", "https://discord.com/api/webhooks/1/t", "http://[2606:4700::1]/"],
)
def test_public_literals_and_names_pass(url):
    assert refuse_private_literal(url) is None
