"""Settings: environment, TOML file, and the refusals that protect mainnet."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from arkgate.settings import Settings


def test_environment_and_toml_are_read(tmp_path, monkeypatch):
    config = tmp_path / "arkgate.toml"
    config.write_text('[arkgate]\nport = 9999\nnetwork = "regtest"\nrate_limits = "off"\n')
    monkeypatch.setenv("ARKGATE_CONFIG", str(config))
    monkeypatch.setenv("ARKGATE_PORT", "8081")  # the environment wins over the file
    monkeypatch.setenv("ARKGATE_DNS_NAMESERVERS", "127.0.0.1:5353, [::1]:53")
    settings = Settings()
    assert settings.port == 8081
    assert settings.network == "regtest"
    assert not settings.rate_limits_enabled
    assert settings.dns_nameservers == ["127.0.0.1:5353", "[::1]:53"]


def test_free_mode_is_refused_on_mainnet():
    with pytest.raises(ValidationError, match="free"):
        Settings(network="bitcoin", payment_mode="free")


def test_private_target_allowance_is_refused_on_mainnet():
    with pytest.raises(ValidationError, match="unsafe_allow_private_targets"):
        Settings(network="bitcoin", unsafe_allow_private_targets=["127.0.0.0/8"])


def test_barkd_token_file_is_trimmed(tmp_path):
    token_file = tmp_path / "auth_token"
    token_file.write_text("  A" + "b" * 43 + "\n")
    assert Settings(barkd_token_file=token_file).barkd_token_value() == "A" + "b" * 43


def test_secrets_are_masked_in_reprs():
    settings = Settings(barkd_token="Asecret-barkd-token", admin_token="admin-secret")
    assert "Asecret-barkd-token" not in repr(settings) and "admin-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"dns_nameservers": ["ns1.example"]}, "ARKGATE_DNS_NAMESERVERS"),
        ({"dns_nameservers": ["[::1]:0"]}, "ARKGATE_DNS_NAMESERVERS"),
        ({"barkd_url": "127.0.0.1:3000"}, "ARKGATE_BARKD_URL"),
        ({"webhook_url": "http://"}, "ARKGATE_WEBHOOK_URL"),
        ({"host": "bad host"}, "ARKGATE_HOST"),
        ({"whois_server": "who is"}, "ARKGATE_WHOIS_SERVER"),
        ({"ssl_check_ports": [443, 70000]}, "ARKGATE_SSL_CHECK_PORTS"),
        ({"rate_limit_sessions": "many"}, "ARKGATE_RATE_LIMIT_SESSIONS"),
        ({"rate_limit_storage": "redis"}, "ARKGATE_RATE_LIMIT_STORAGE"),
    ],
)
def test_invalid_values_are_refused_naming_the_setting(overrides, named):
    from arkgate.settings import describe_invalid

    with pytest.raises(ValidationError) as caught:
        Settings(**overrides)
    assert describe_invalid(caught.value).startswith(f"{named}: ")


def test_valid_addresses_are_accepted():
    settings = Settings(
        host="::",
        dns_nameservers=["127.0.0.1", "127.0.0.1:5353", "::1", "[::1]:53"],
        barkd_url="http://[::1]:3000",
        whois_server="whois.example.org",
        rate_limit_storage="redis://127.0.0.1:6379/0",
    )
    assert settings.dns_nameservers[-1] == "[::1]:53"
