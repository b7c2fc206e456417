"""The delivery client's own check of IP literals, as aiohttp parses the URL."""

import pytest

from app.delivery.client import refuse_private_literal
from app.delivery.guard import UnsafeTargetError, parse_private_targets


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


def test_the_policy_decides_which_private_literals_pass():
    listed = parse_private_targets("127.0.0.1/32")
    assert refuse_private_literal("http://127.0.0.1:8080/hook", allow_private=listed) is None
    assert refuse_private_literal("http://[::ffff:7f00:1]/", allow_private=listed) is None
    with pytest.raises(UnsafeTargetError, match="add it to ALLOW_PRIVATE_WEBHOOK_TARGETS"):
        refuse_private_literal("http://10.0.0.5/hook", allow_private=listed)


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest", "http://[fd00:ec2::254]/"])
def test_metadata_literals_are_refused_under_true(url):
    with pytest.raises(UnsafeTargetError, match="only listing it in ALLOW_PRIVATE_WEBHOOK_TARGETS"):
        refuse_private_literal(url, allow_private=parse_private_targets("true"))
