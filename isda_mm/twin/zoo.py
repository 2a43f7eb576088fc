"""``isda-config --zoo``: decide every config of the installed zoos (no
model built, nothing written) and tabulate the coverage."""
import dataclasses
import importlib
import importlib.util
import os
import os.path as osp
import time
from collections import Counter
from typing import Any, Dict, List, Mapping, Optional, Sequence

from .decide import decide, error_text
from .meta import quiet
from .parsing import fast_parsing, load_config


def zoo_dir(package: str) -> str:
    """``<package>/.mim/configs`` of an installed toolkit."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f'{package} is not installed')
    return osp.join(osp.dirname(spec.origin), '.mim', 'configs')


def zoo_configs(package: str) -> List[str]:
    """Every config of a toolkit's zoo but its ``_base_`` files, sorted."""
    root = zoo_dir(package)
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != '_base_']
        found += [osp.join(folder, f) for f in files if f.endswith('.py')]
    return sorted(found)


def parse_config(path: str) -> Any:
    """:func:`load_config`, or the exception it raised (its traceback
    dropped, as it is kept)."""
    try:
        return load_config(path)
    except Exception as e:
        return e.with_traceback(None)


def parse_zoo(package: str) -> Dict[str, Any]:
    """Every config of ``package``'s zoo parsed, for several walks.

    Args:
        package (str): an installed toolkit.

    Returns:
        dict: path -> Config, or the exception parsing raised.
    """
    with fast_parsing(), quiet():
        return {path: parse_config(path) for path in zoo_configs(package)}


@dataclasses.dataclass
class ZooStats:
    """Outcome of every config of one toolkit's zoo."""
    package: str
    version: str = ''
    configs: int = 0
    verdicts: Dict[str, str] = dataclasses.field(default_factory=dict)
    refused: Counter = dataclasses.field(default_factory=Counter)
    undecided: Counter = dataclasses.field(default_factory=Counter)
    enabled_heads: Counter = dataclasses.field(default_factory=Counter)
    reasons: Dict[str, List[str]] = dataclasses.field(default_factory=dict)
    unparsed: Dict[str, str] = dataclasses.field(default_factory=dict)
    crashed: Dict[str, str] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    def count(self, verdict: str) -> int:
        """Configs with this verdict."""
        return sum(v == verdict for v in self.verdicts.values())

    @property
    def with_head(self) -> int:
        """Configs in which a classifier head was found."""
        return sum(v != 'no head' for v in self.verdicts.values())


def walk_zoo(package: str,
             parsed: Optional[Mapping[str, Any]] = None) -> ZooStats:
    """Parse and decide (no model built, nothing written) every config of
    ``package``'s zoo.

    A refused config counts once under each distinct refusal reason of
    its heads; ``reasons`` keeps each refused or undecided config's
    reasons.

    Args:
        package (str): an installed toolkit.
        parsed (Mapping, optional): its zoo already parsed, from
            :func:`parse_zoo`; the time it took is not counted then.
            Defaults to None (parse here).

    Returns:
        ZooStats: the outcome.
    """
    start, cpu = time.perf_counter(), time.process_time()
    root = zoo_dir(package)
    stats = ZooStats(package, getattr(importlib.import_module(package),
                                      '__version__', ''))
    with fast_parsing(), quiet():
        for path in zoo_configs(package):
            name = osp.relpath(path, root)
            stats.configs += 1
            cfg = parse_config(path) if parsed is None else parsed[path]
            if isinstance(cfg, Exception):
                stats.unparsed[name] = error_text(cfg).replace(
                    root + os.sep, '')
                continue
            try:
                decision = decide(cfg, package)
            except ImportError as e:  # its custom_imports
                stats.unparsed[name] = error_text(e)
                continue
            except Exception as e:  # a bug of the tool
                stats.crashed[name] = error_text(e)
                continue
            stats.verdicts[name] = decision.verdict
            if decision.verdict == 'enabled':
                stats.enabled_heads.update(
                    {h.twin for h in decision.enabled})
            elif decision.verdict in ('refused', 'undecided'):
                reasons = [h.decision.reason for h in decision.heads
                           if h.decision.outcome == decision.verdict]
                stats.reasons[name] = reasons
                getattr(stats, decision.verdict).update(set(reasons))
    stats.seconds = time.perf_counter() - start
    stats.cpu_seconds = time.process_time() - cpu
    return stats


def _cell(text: str) -> str:
    """``text`` for a Markdown table cell."""
    return text.replace('|', '\\|')


def coverage_table(walks: Sequence[ZooStats]) -> str:
    """Markdown tables of a zoo walk: counts per toolkit, then the
    reasons.

    Args:
        walks (Sequence[ZooStats]): one per toolkit.

    Returns:
        str: the tables, as ``isda-config --zoo`` prints them.
    """
    lines = [
        '| toolkit | configs | classifier head found | ISDA enabled | '
        'refused | undecided | no classifier head | unparsed |',
        '|---|---:|---:|---:|---:|---:|---:|---:|'
    ]
    for s in walks:
        lines.append(
            f'| {s.package} {s.version} | {s.configs} | {s.with_head} | '
            f"{s.count('enabled')} | {s.count('refused')} | "
            f"{s.count('undecided')} | {s.count('no head')} | "
            f'{len(s.unparsed) + len(s.crashed)} |')
    sections = [
        ('Configs with ISDA, by ISDA head', 'ISDA head',
         lambda s: s.enabled_heads),
        ('Refused configs, by reason (a config counts once per reason of '
         'its heads)', 'reason', lambda s: s.refused),
        ('Undecided configs, by reason', 'reason', lambda s: s.undecided),
        ('Unparsed configs, by reason', 'reason',
         lambda s: Counter(list(s.unparsed.values())
                           + list(s.crashed.values()))),
    ]
    for title, column, counts in sections:
        rows = [(s.package, n, reason) for s in walks
                for reason, n in sorted(counts(s).items(),
                                        key=lambda item: (-item[1], item[0]))]
        if rows:
            lines += ['', f'{title}:', '',
                      f'| toolkit | configs | {column} |', '|---|---:|---|']
            lines += [f'| {p} | {n} | {_cell(r)} |' for p, n, r in rows]
    return '\n'.join(lines)
