"""The edge proxy: its certificates, its configuration, and what a change to either does."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.platform import Platform, PlatformArgs
from plan.compare import compare
from plan.recorder import Graph, run_program, run_under_mocks
from stacks.catalogue import PLATFORM, Catalogue
from stacks.loader import SecretOverrides, StackConfigError, parse_settings
from tests.unit.conftest import edited

CERTIFICATE_KEY = "ecommerce:edgeTlsCertificate"
KEY_KEY = "ecommerce:edgeTlsKey"
CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIB-test-certificate\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIE-test-key-material\n-----END PRIVATE KEY-----\n"


def own_certificate(platform: dict[str, Any]) -> None:
    platform["edge"]["tls"] = {"certificates": "files"}


def with_files(config: dict[str, Any]) -> dict[str, Any]:
    return config | {CERTIFICATE_KEY: CERTIFICATE, KEY_KEY: KEY}


def uploads_of(graph: Graph, prefix: str) -> dict[str, tuple[str, bool]]:
    """The edge seed's files: name -> (content, whether it is a secret)."""
    seed = graph.container(f"{prefix}-edge-config-seed")
    return {
        upload["file"].removeprefix("/run/secrets/"): (
            upload["content"],
            seed.is_secret(f"uploads.{i}.content"),
        )
        for i, upload in enumerate(seed.inputs["uploads"])
    }


def test_certificates_of_your_own_reach_the_proxy_as_secret_files() -> None:
    graph = run_program(
        "prod", with_files(edited("prod", own_certificate)), secret_keys=[CERTIFICATE_KEY, KEY_KEY]
    )
    files = uploads_of(graph, "shop")
    assert files["tls-certificate.pem"] == (CERTIFICATE, True)
    assert files["tls-key.pem"] == (KEY, True)
    caddyfile, secret = files["Caddyfile"]
    assert not secret
    assert caddyfile.count("tls /etc/caddy/tls-certificate.pem /etc/caddy/tls-key.pem") == 5
    assert "email" not in caddyfile
    # Mounted read-only where the image reads its configuration; never in the environment.
    edge = graph.container("shop-edge")
    mounts = {m["containerPath"]: m for m in edge.inputs["volumes"]}
    assert mounts["/etc/caddy"]["readOnly"] is True
    assert mounts["/data"]["volumeName"] == "shop-edge-data"
    assert not any("PEM" in env or "KEY" in env for env in edge.inputs.get("envs", []))


def test_certificates_from_files_need_both_secrets() -> None:
    config = edited("prod", own_certificate) | {CERTIFICATE_KEY: CERTIFICATE}
    with pytest.raises(
        StackConfigError,
        match=r"ecommerce:edgeTlsKey is missing: "
        r"edge\.tls\.certificates is files; set it from the PEM file",
    ):
        run_program("prod", config, secret_keys=[CERTIFICATE_KEY])


def test_a_key_stored_in_plain_text_is_refused() -> None:
    with pytest.raises(StackConfigError, match="ecommerce:edgeTlsKey is stored in plain text"):
        run_program(
            "prod", with_files(edited("prod", own_certificate)), secret_keys=[CERTIFICATE_KEY]
        )


def test_a_certificate_for_automatic_certificates_is_refused() -> None:
    with pytest.raises(
        StackConfigError,
        match=r"edgeTlsCertificate is set but "
        r"edge\.tls\.certificates is not files",
    ):
        run_program(
            "prod",
            with_files(edited("prod", lambda p: None)),
            secret_keys=[CERTIFICATE_KEY, KEY_KEY],
        )


def test_an_internal_ca_writes_no_trust_store_and_sends_no_hsts() -> None:
    graph = run_program(
        "prod",
        edited(
            "prod", lambda p: p["edge"].update(tls={"certificates": "internal"}, httpsPort=8443)
        ),
    )
    caddyfile, _ = uploads_of(graph, "shop")["Caddyfile"]
    assert "skip_install_trust" in caddyfile and caddyfile.count("tls internal") == 5
    assert "Strict-Transport-Security" not in caddyfile
    # Redirects name the published port, not the one Caddy listens on inside.
    assert "redir https://{host}:8443{uri} 308" in caddyfile
    assert graph.outputs["urls"]["frontend"] == "https://shop.example.com:8443"


def test_a_new_host_name_restarts_the_proxy_alone_and_shows_the_edit(prod_graph: Graph) -> None:
    def new_host(platform: dict[str, Any]) -> None:
        platform["edge"]["hosts"]["frontend"] = "store.example.com"

    plan = compare("prod", prod_graph, run_program("prod", edited("prod", new_host)))
    changes = {c.name: c for c in plan.changed()}
    assert set(changes) == {
        "platform-edge-config-seed",
        "platform-edge-config-revision",
        "platform-edge-container",
        "platform-edge-pids",
    }
    # It holds the published ports: delete first (a second of refused connections).
    edge = changes["platform-edge-container"]
    assert (edge.action, edge.delete_before_replace) == ("replace", True)
    # The Caddyfile is no secret: the plan shows the new text to the reviewer.
    (upload,) = [v for v in changes["platform-edge-config-seed"].values if "uploads" in v.path]
    assert "store.example.com {" in str(upload.new)  # not the SECRET mark


def test_a_new_app_image_leaves_the_proxy_alone(prod_graph: Graph) -> None:
    def new_gateway(platform: dict[str, Any]) -> None:
        platform["services"]["gateway"]["image"] = (
            "registry.example.com/ecommerce/api-gateway:1.0.1"
        )

    plan = compare("prod", prod_graph, run_program("prod", edited("prod", new_gateway)))
    changes = {c.name: c for c in plan.changed()}
    assert set(changes) == {
        "platform-gateway-generation",
        "platform-gateway-container",
        "platform-gateway-pids",
        "platform-gateway-traffic",
    }
    gateway = changes["platform-gateway-container"]
    assert (gateway.action, gateway.delete_before_replace) == ("replace", False)


def test_the_proxy_publishes_its_ports_in_the_order_the_provider_reads_them_back() -> None:
    # A catalogue listing the web apps before the gateway, a port map and a host name: the
    # provider reads ports back sorted by inside port, so they are sent that way.
    catalogue = Catalogue(tuple(sorted(PLATFORM.services, key=lambda spec: -spec.container_port)))
    platform = edited("dev", lambda p: p["edge"].update(hosts={"backoffice": "admin.example.test"}))
    platform = platform["ecommerce:platform"]

    def program() -> None:
        settings = parse_settings(json.dumps(platform), catalogue, "Pulumi.dev.yaml")
        Platform("platform", PlatformArgs(settings, catalogue, SecretOverrides(), "dev"))

    graph = run_under_mocks(program, "dev", {"ecommerce:platform": platform})
    ports = graph.container("shop-dev-edge").inputs["ports"]
    # The apps' own ports, then Grafana's (dev), then the host names'.
    assert [p["internal"] for p in ports] == [3000, 3008, 3009, 3030, 8080]
