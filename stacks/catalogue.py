"""The platform's services: the facts that are the same in every environment.

Images, host ports, limits and secrets differ per stack and live in the stack files; what a
service *is* (its container port, whether it owns a database, whether it talks to Redis) is a
property of the platform and lives here. Tests and benchmarks may pass another catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """Where a service sits; decides its networks."""

    GATEWAY = "gateway"  # the API entry point: reaches every business service
    BUSINESS = "business"  # owns its data; reachable only through the gateway's network
    WEB = "web"  # browser apps (shop, backoffice): talk to the gateway only


# The environment the platform sets for every app (see components/parts/service.py); a stack's extra
# `env` may not redefine these.
SERVICE_ENV_NAMES = frozenset(
    {
        "PORT",
        "SERVICE_NAME",
        "NODE_ENV",
        "CORS_ORIGINS",
        "DATABASE_HOST",
        "DATABASE_PORT",
        "DATABASE_NAME",
        "DATABASE_USER",
        "DATABASE_PASSWORD_FILE",
        "REDIS_HOST",
        "REDIS_PORT",
        "REDIS_PASSWORD_FILE",
        "JWT_SECRET_FILE",
        "UPSTREAMS",
        "GATEWAY_URL",
    }
)


@dataclass(frozen=True)
class DatabaseSpec:
    """The PostgreSQL database a business service owns."""

    name: str
    """Database name inside its server, e.g. `customer_db`."""
    user: str
    """The service's own login role, owner of the database, e.g. `customer_user`."""


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the platform."""

    name: str
    """Short name: the key in stack files, outputs and container names (`customer`)."""
    role: Role
    container_port: int
    """The port the app listens on inside its container (also its `PORT` env)."""
    database: DatabaseSpec | None = None
    uses_redis: bool = False
    uses_jwt: bool = False
    """Verifies or signs JWTs with the platform's one shared signing secret."""
    description: str = ""


@dataclass(frozen=True)
class Catalogue:
    services: tuple[ServiceSpec, ...]

    def __post_init__(self) -> None:
        names = [s.name for s in self.services]
        if len(names) != len(set(names)):
            raise ValueError(f"catalogue lists a service twice: {sorted(names)}")
        if sum(s.role is Role.GATEWAY for s in self.services) != 1:
            raise ValueError("catalogue needs exactly one gateway service")

    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.services)

    def get(self, name: str) -> ServiceSpec:
        for spec in self.services:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def with_database(self) -> tuple[ServiceSpec, ...]:
        return tuple(s for s in self.services if s.database is not None)

    def gateway(self) -> ServiceSpec:
        return next(s for s in self.services if s.role is Role.GATEWAY)


# Container ports of the frontend and backoffice are not given by the original setup; 3008 and
# 3009 mirror their dev host ports (13008, 13009) the way 3000-3005 mirror 13000-13005.
PLATFORM = Catalogue(
    services=(
        ServiceSpec(
            "gateway",
            Role.GATEWAY,
            3000,
            uses_redis=True,
            uses_jwt=True,
            description="API gateway, the main entry point; keeps sessions in Redis",
        ),
        ServiceSpec(
            "customer",
            Role.BUSINESS,
            3001,
            DatabaseSpec("customer_db", "customer_user"),
            uses_jwt=True,
            description="customers, addresses, companies",
        ),
        ServiceSpec(
            "product",
            Role.BUSINESS,
            3002,
            DatabaseSpec("product_db", "product_user"),
            uses_jwt=True,
            description="product catalogue, categories, images",
        ),
        ServiceSpec(
            "order",
            Role.BUSINESS,
            3003,
            DatabaseSpec("order_db", "order_user"),
            uses_jwt=True,
            description="orders, invoices, credit notes",
        ),
        ServiceSpec(
            "cart",
            Role.BUSINESS,
            3004,
            uses_redis=True,
            uses_jwt=True,
            description="shopping carts, kept in Redis",
        ),
        ServiceSpec(
            "content",
            Role.BUSINESS,
            3005,
            DatabaseSpec("website_content_db", "content_user"),
            uses_jwt=True,
            description="website content",
        ),
        ServiceSpec("frontend", Role.WEB, 3008, description="shop UI"),
        ServiceSpec("backoffice", Role.WEB, 3009, description="admin UI"),
    )
)
