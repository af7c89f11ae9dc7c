"""Network topologies: the `Topology` value type, built-in b4/geant/att, and file loaders."""

from mamrl.topologies.builtin import (
    PAPER_FAILURES,
    BuiltinSummary,
    builtin_names,
    builtin_notes,
    builtin_source,
    builtin_summary,
    load_builtin,
    extended_failure_links,
    paper_failure_links,
)
from mamrl.topologies.core import Link, PacketSizeTable, Topology
from mamrl.topologies.loaders import (
    DEMAND_LAYOUTS,
    FORMAT,
    load_daphne_json,
    load_teavar_dir,
    load_topology,
    read_demand_file,
    read_demand_values,
    read_topology_file,
    save_topology,
)

__all__ = [
    "DEMAND_LAYOUTS",
    "FORMAT",
    "PAPER_FAILURES",
    "BuiltinSummary",
    "Link",
    "PacketSizeTable",
    "Topology",
    "builtin_names",
    "builtin_notes",
    "builtin_source",
    "builtin_summary",
    "load_builtin",
    "load_daphne_json",
    "load_teavar_dir",
    "load_topology",
    "extended_failure_links",
    "paper_failure_links",
    "read_demand_file",
    "read_demand_values",
    "read_topology_file",
    "save_topology",
]
