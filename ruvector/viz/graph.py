"""An ATTEND traversal drawn over its graph store."""
import numpy as np

from .._validate import integer
from ..errors import InvalidInput
from .figure import colour_map, new_figure

MAX_NODE_LABELS = 60
CONTEXT_SHIFT = -0.3  # neighbours not taken sit just before their hop's column


def traversal(store, query, params=None, *, title=None, max_context=100, cmap="viridis",
              **limits):
    """The matches of ``query`` (``MATCH ... ATTEND BY ... RETURN ...``, see
    :meth:`GraphStore.trace`) drawn in columns by hop: every reached node coloured by the
    best ``score()`` of a match through it, the hop edges drawn thick (width by that score),
    and up to ``max_context`` neighbours the traversal did not take, small and grey, beside
    the hop after the node they hang off."""
    max_context = integer(max_context, "max_context", error=InvalidInput)
    matches = store.trace(query, params, **limits)
    if not matches:
        raise InvalidInput("the query matched nothing: there is no traversal to draw")
    depth, score, edges = {}, {}, {}
    for match in matches:
        for path in match["paths"]:
            nodes = path["nodes"]
            for hop, node in enumerate(nodes):
                depth[node] = min(depth.get(node, hop), hop)
                score[node] = max(score.get(node, 0.0), match["score"])
            for pair in zip(nodes, nodes[1:]):
                edges[pair] = max(edges.get(pair, 0.0), match["score"])
    context = _context(store, depth, max_context)
    position = {**_layered(depth, 0.0),
                **_layered({n: c["depth"] for n, c in context.items()}, CONTEXT_SHIFT)}
    fig = new_figure(9.0, 6.0)
    ax = fig.add_subplot()
    from matplotlib.colors import Normalize
    colours, norm = colour_map(cmap), Normalize(0.0, max(score.values()))
    for node, anchor in context.items():
        _edge(ax, position[anchor["from"]], position[node], "#c8c8c8", 0.6)
    top = max(edges.values(), default=1.0)   # a match of start nodes alone has no hop
    for (a, b), s in edges.items():
        _edge(ax, position[a], position[b], colours(norm(s)), 1.0 + 4.0 * s / top, arrow=True)
    if context:
        xy = np.array([position[n] for n in context])
        ax.scatter(xy[:, 0], xy[:, 1], s=18, c="#bdbdbd", zorder=2, label="not taken")
    reached = list(depth)
    xy = np.array([position[n] for n in reached])
    dots = ax.scatter(xy[:, 0], xy[:, 1], s=220, c=[score[n] for n in reached], cmap=colours,
                      norm=norm, edgecolors="black", linewidths=0.8, zorder=3)
    if len(reached) <= MAX_NODE_LABELS:
        for node, (x, y) in zip(reached, xy):
            ax.annotate(str(node), (x, y), xytext=(0, 11), textcoords="offset points",
                        ha="center", fontsize=8, zorder=4)
    fig.colorbar(dots, ax=ax, label="score() (best match through the node)")
    hops = max(depth.values())
    ax.set_xticks(range(hops + 1), ["start"] + [f"hop {h}" for h in range(1, hops + 1)])
    ax.set_yticks([])
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    if context:
        ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_title(title or f"{len(matches)} matches, {len(reached)} nodes reached")
    return fig


def _context(store, depth, limit):
    """Neighbours (either direction) of the reached nodes that no match reached:
    ``{node: {"from": reached node, "depth": its hop + 1}}``, at most ``limit``."""
    out = {}
    for node, hop in sorted(depth.items(), key=lambda item: item[1]):
        for other in store.neighbors(node, "both"):
            if len(out) >= limit:
                return out
            if other not in depth and other not in out:
                out[other] = {"from": node, "depth": hop + 1}
    return out


def _layered(depth, shift):
    """(x, y) per node: x its hop + ``shift``, the nodes of a hop spread over y in [-1, 1]."""
    columns = {}
    for node, d in depth.items():
        columns.setdefault(d, []).append(node)
    position = {}
    for x, nodes in columns.items():
        ys = np.linspace(1.0, -1.0, len(nodes)) if len(nodes) > 1 else [0.0]
        position.update({node: (x + shift, float(y)) for node, y in zip(nodes, ys)})
    return position


def _edge(ax, start, end, colour, width, arrow=False):
    ax.annotate("", xy=end, xytext=start, zorder=1, arrowprops=dict(
        arrowstyle="-|>" if arrow else "-", color=colour, lw=width, shrinkA=7, shrinkB=7,
        mutation_scale=10))
