"""The consensus store of the replicated databases: an etcd cluster, one member per node.

Patroni keeps each replicated database's leader lock here (docs/replication.md). Three members
on three nodes: losing one keeps a majority, so a primary on a lost node is replaced. Each
member is its own workload with its own home (`consensus-1`, ...): a member's name and data
must stay with it, and the swarm's placement puts each home on a node of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from components.engine import Engine
from components.engine.workload import ImageNeeds, Mount, Network, Running, Workload
from stacks.settings import Resources

CLIENT_PORT = 2379
PEER_PORT = 2380
DATA_MOUNT = "/var/lib/etcd"
MEMBERS = 3
"""A majority survives one lost member (and node)."""

ETCD_NEEDS = ImageNeeds(non_root_user="65534")


def consensus_home(member: int) -> str:
    """A member's home (`Workload.home`): its key in `swarm.placement`."""
    return f"consensus-{member}"


@dataclass(frozen=True)
class ConsensusArgs:
    docker_name: str
    """Base of the Docker names: member `<docker_name>-1`, its volume `<docker_name>-1-data`."""
    image: pulumi.Input[str]
    engine: Engine
    labels: Mapping[str, str]
    resources: Resources = field(default_factory=lambda: Resources(memory_mb=256, cpus=0.25))
    protect_data: bool = True


class Consensus(pulumi.ComponentResource):
    network: docker.Network
    """Where the members meet and their clients (the databases' members) reach them."""
    endpoints: list[str]
    """`host:port` of each member, for the clients."""
    members: list[Running]

    def __init__(
        self, name: str, args: ConsensusArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ecommerce:index:Consensus", name, None, opts)
        self._name, self._args = name, args
        names = [f"{args.docker_name}-{n}" for n in range(1, MEMBERS + 1)]
        self.network = args.engine.network(
            f"{name}-network", args.docker_name, True, args.labels, self
        )
        self.endpoints = [f"{member}:{CLIENT_PORT}" for member in names]
        self.members = [self._member(n, names) for n in range(1, MEMBERS + 1)]
        self.register_outputs({})

    def _member(self, n: int, names: Sequence[str]) -> Running:
        args, me = self._args, names[n - 1]
        home = consensus_home(n)
        data = args.engine.volume(
            f"{self._name}-{n}-data",
            f"{me}-data",
            args.labels,
            self,
            protect=args.protect_data,
            home=home,
        )
        cluster = ",".join(f"{peer}=http://{peer}:{PEER_PORT}" for peer in names)
        return args.engine.run(
            Workload(
                name=f"{self._name}-{n}",
                docker_name=me,
                image=args.image,
                command=[
                    "etcd",
                    f"--name={me}",
                    f"--data-dir={DATA_MOUNT}/data",
                    f"--listen-peer-urls=http://0.0.0.0:{PEER_PORT}",
                    f"--listen-client-urls=http://0.0.0.0:{CLIENT_PORT}",
                    f"--advertise-client-urls=http://{me}:{CLIENT_PORT}",
                    f"--initial-advertise-peer-urls=http://{me}:{PEER_PORT}",
                    f"--initial-cluster={cluster}",
                    # Read at the first start only; later starts use the data directory.
                    "--initial-cluster-state=new",
                    f"--initial-cluster-token={args.docker_name}",
                    # Patroni rewrites its keys every few seconds: without compaction the
                    # history fills etcd's quota, which then refuses every write (a primary
                    # that cannot renew its lock steps down).
                    "--auto-compaction-mode=periodic",
                    "--auto-compaction-retention=1h",
                ],
                mounts=[Mount(data.name, DATA_MOUNT)],
                networks=[Network(self.network, me)],
                needs=ETCD_NEEDS,
                resources=args.resources,
                # Listening for its peers, not "healthy": a member answers clients only once a
                # majority has formed, and a swarm names a task in its DNS only once healthy,
                # so a check that needs the majority would keep the members from finding each
                # other.
                health_test=["CMD", "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{PEER_PORT}"],
                labels=dict(args.labels),
                stop_grace_seconds=10,
                pids_limit=256,
                home=home,
            ),
            self,
        )
