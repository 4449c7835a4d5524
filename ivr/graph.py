"""``hotline menus graph``: a number's menu as an SVG picture for review, with no Graphviz.

The layout is layered, left to right: a node's column is its distance (in steps) from the
start, so every drawn arrow goes exactly one column to the right. An edge back to an earlier
or the same column (``9`` back to the main menu, ``0`` to a shared operator junction) is not
drawn across the picture but written as a badge under its node (``9 ↪ main-menu``), which keeps
the picture readable for the 70-node general menu. Within a column nodes are ordered by where
their parents are (barycentre) and placed level with them when there is room.

Every arrow and badge carries what takes the caller there: a key (``1``), a time branch
(``закрыто``, ``праздник``, ``усиленный режим``), a lookup's answer, ``иначе`` for a fallback.
Ends are coloured by kind: queue (with its group), transfer (with the number), hang-up.
The output depends on the menu alone: the same file gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from ivr.menu.model import Menu, Node
from ivr.nodes.callback import CallbackNode
from ivr.nodes.collect import CollectNode
from ivr.nodes.condition import ConditionNode, Test
from ivr.nodes.goto import GotoNode
from ivr.nodes.lookup import LookupNode
from ivr.nodes.menu import MenuNode
from ivr.nodes.play import PlayNode
from ivr.nodes.queue import QueueNode
from ivr.nodes.rating import RatingNode
from ivr.nodes.record import RecordNode
from ivr.nodes.say import SayNode
from ivr.nodes.set import SetNode
from ivr.nodes.transfer import TransferNode

OTHERWISE = "иначе"
TEST_NAMES = {
    "open": "открыто",
    "closed": "закрыто",
    "holiday": "праздник",
    "surge": "усиленный режим",
    "workday": "будний день",
    "saturday": "суббота",
    "sunday": "воскресенье",
    "seen_before": "звонил раньше",
}
# fill, stroke and the legend's words for each kind of node
STYLES: dict[str, tuple[str, str, str]] = {
    "play": ("#f2f2f2", "#8c8c8c", "сообщение"),
    "say": ("#f2f2f2", "#8c8c8c", "произнести"),
    "menu": ("#dcebfb", "#3a78c2", "меню (клавиши)"),
    "collect": ("#dcebfb", "#3a78c2", "ввод цифр"),
    "condition": ("#fff4cc", "#c09a00", "условие"),
    "lookup": ("#ede3f7", "#7b4fa8", "запрос статуса"),
    "set": ("#ffffff", "#b0b0b0", "переменные"),
    "goto": ("#ffffff", "#b0b0b0", "переход"),
    "record": ("#dff3f0", "#2e8b7a", "запись сообщения"),
    "callback": ("#fdf0f7", "#a0437a", "обратный звонок"),
    "rating": ("#dff3f0", "#2e8b7a", "оценка"),
    "queue": ("#dcf5dc", "#2f8f2f", "очередь к операторам"),
    "transfer": ("#ffe6cc", "#d9822b", "перевод"),
    "hangup": ("#fadcdc", "#c0392b", "отбой"),
}

FONT = "DejaVu Sans, Arial, sans-serif"
CHAR_WIDTH = 7.0  # px per character at 12 px: an estimate is enough for box widths
NODE_HEIGHT = 40.0
BADGE_HEIGHT = 16.0
ROW_GAP = 14.0
COLUMN_GAP = 150.0
MARGIN = 20.0
TOP = 70.0  # room for the title and the legend
LABEL_CHARS = 22  # longer arrow labels are cut on the picture (the full text is its tooltip)


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str


@dataclass
class Box:
    node: Node
    column: int
    x: float = 0.0
    y: float = 0.0
    width: float = 0.0
    badges: list[Edge] = field(default_factory=list)

    @property
    def block(self) -> float:
        """Height of the box with its badges."""
        return NODE_HEIGHT + BADGE_HEIGHT * len(self.badges)


def edges(node: Node) -> list[Edge]:
    """Where a node may send the caller, each with what takes them there."""
    pairs = list(_labelled_targets(node))
    merged: dict[str, list[str]] = {}
    for target, label in pairs:
        merged.setdefault(target, []).append(label)
    return [Edge(node.id, target, ", ".join(labels)) for target, labels in merged.items()]


def _labelled_targets(node: Node) -> Iterable[tuple[str, str]]:
    if isinstance(node, MenuNode):
        yield from ((target, key) for key, (target, _) in node.options.items())
        yield node.fallback[0], OTHERWISE
    elif isinstance(node, CollectNode):
        yield node.next[0], "введено"
        yield node.fallback[0], OTHERWISE
    elif isinstance(node, ConditionNode):
        yield from ((b.goto[0], test_label(b.test)) for b in node.branches)
        yield node.otherwise[0], OTHERWISE
    elif isinstance(node, LookupNode):
        yield node.found[0], "найдено"
        yield node.not_found[0], "не найдено"
        yield node.failure[0], "сбой"
    elif isinstance(node, QueueNode):
        if node.then_rating is not None:
            yield node.then_rating[0], "после оператора"
        if node.otherwise is not None:
            yield node.otherwise[0], "не ответили"
    else:
        yield from ((target, "") for target, _ in node.targets())


def test_label(test: Test) -> str:
    if test.name == "variable":
        return f"{test.variable} = {test.equals}"
    return TEST_NAMES.get(test.name, test.name)


def describe(node: Node) -> str:
    """The second line of a node's box: what it does, in a few words."""
    if isinstance(node, QueueNode):
        return f"очередь: {node.group}" + (f", приоритет {node.priority}" if node.priority else "")
    if isinstance(node, TransferNode):
        return f"перевод на {node.number}"
    if isinstance(node, CallbackNode):
        return f"обратный звонок: {node.group or 'группа меню'}"
    if isinstance(node, CollectNode):
        check = f", {node.validate}" if node.validate else ""
        return f"ввод → {node.store}{check}"
    if isinstance(node, PlayNode | RecordNode | RatingNode) and node.files:
        return f"{STYLES[node.kind][2]}: {node.files[0][0].rsplit('/', 1)[-1]}"
    if isinstance(node, SayNode):
        return f"произнести {node.what}: {node.value}"
    if isinstance(node, SetNode):
        return ", ".join(f"{k} = {v}" for k, v in node.values.items())
    if isinstance(node, LookupNode):
        return f"запрос {node.path}"
    if isinstance(node, GotoNode):
        return "переход"
    return STYLES.get(node.kind, ("", "", node.kind))[2]


# --- layout ------------------------------------------------------------------------------


def columns(menu: Menu) -> dict[str, int]:
    """Each reachable node's distance from the start (the linter rejects unreachable ones;
    any left are put after the last column)."""
    column = {menu.start: 0}
    order = [menu.start]
    for node_id in order:
        for edge in edges(menu.nodes[node_id]):
            if edge.target in menu.nodes and edge.target not in column:
                column[edge.target] = column[node_id] + 1
                order.append(edge.target)
    last = max(column.values(), default=-1) + 1
    for node_id in menu.nodes:
        column.setdefault(node_id, last)
    return column


def layout(menu: Menu) -> tuple[dict[str, Box], list[Edge]]:
    """Boxes placed on the page and the edges drawn as arrows (the rest become badges)."""
    column = columns(menu)
    boxes = {n: Box(node, column[n]) for n, node in menu.nodes.items()}
    arrows: list[Edge] = []
    for node_id, node in menu.nodes.items():
        for edge in edges(node):
            if edge.target not in boxes:
                continue
            if column[edge.target] == column[node_id] + 1:
                arrows.append(edge)
            else:
                boxes[node_id].badges.append(edge)
    layers = _order_layers(menu, column, arrows)
    _place(layers, boxes, arrows)
    return boxes, arrows


def _order_layers(menu: Menu, column: dict[str, int], arrows: list[Edge]) -> list[list[str]]:
    """Nodes of each column, ordered by their parents' positions (ties: discovery order)."""
    found = list(columns(menu))  # discovery order
    count = max(column.values(), default=0) + 1
    layers: list[list[str]] = [[n for n in found if column[n] == c] for c in range(count)]
    parents: dict[str, list[str]] = {}
    for edge in arrows:
        parents.setdefault(edge.target, []).append(edge.source)
    for index in range(1, count):
        rank = {n: i for i, n in enumerate(layers[index - 1])}

        def centre(node_id: str, rank: dict[str, int] = rank) -> float:
            mine = [rank[p] for p in parents.get(node_id, ()) if p in rank]
            return sum(mine) / len(mine) if mine else float(len(rank))

        layers[index].sort(key=lambda n: (centre(n), found.index(n)))
    return layers


def _place(layers: list[list[str]], boxes: dict[str, Box], arrows: list[Edge]) -> None:
    parents: dict[str, list[str]] = {}
    for edge in arrows:
        parents.setdefault(edge.target, []).append(edge.source)
    x = MARGIN
    for layer in layers:
        width = max((_box_width(boxes[n]) for n in layer), default=0.0)
        bottom = TOP
        for node_id in layer:
            box = boxes[node_id]
            level = [boxes[p].y for p in parents.get(node_id, ())]
            wanted = sum(level) / len(level) if level else TOP
            box.x, box.y, box.width = x, max(bottom, wanted), width
            bottom = box.y + box.block + ROW_GAP
        x += width + COLUMN_GAP


def _box_width(box: Box) -> float:
    texts = [box.node.id, describe(box.node)] + [_badge_text(e) for e in box.badges]
    return max(120.0, max(len(t) for t in texts) * CHAR_WIDTH + 16)


def _badge_text(edge: Edge) -> str:
    return f"{edge.label} ↪ {edge.target}" if edge.label else f"↪ {edge.target}"


# --- drawing -----------------------------------------------------------------------------


def render_svg(menu: Menu) -> str:
    """The menu as a standalone SVG document (UTF-8 text)."""
    boxes, arrows = layout(menu)
    crowded = _crowded(arrows)
    width = max((b.x + b.width for b in boxes.values()), default=0.0) + MARGIN
    width = max(width, 920.0)
    height = max((b.y + b.block for b in boxes.values()), default=TOP) + MARGIN
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family={quoteattr(FONT)} font-size="12">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',
        _title(menu),
        *_legend(),
        *(_arrow(edge, boxes) for edge in arrows),
        *(_box(box, menu) for box in boxes.values()),
        *(_arrow_label(edge, boxes, crowded) for edge in arrows if edge.label),
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def _title(menu: Menu) -> str:
    text = f"{menu.number} — {menu.title} (старт: {menu.start}, резервная группа: {menu.group})"
    return f'<text x="{MARGIN:.0f}" y="24" font-size="16" font-weight="bold">{escape(text)}</text>'


def _legend() -> list[str]:
    shown = (
        "menu",
        "condition",
        "play",
        "lookup",
        "record",
        "callback",
        "queue",
        "transfer",
        "hangup",
    )
    parts, x = [], MARGIN
    for kind in shown:
        fill, stroke, words = STYLES[kind]
        parts.append(
            f'<rect x="{x:.1f}" y="38" width="14" height="12" rx="2" fill="{fill}" '
            f'stroke="{stroke}"/><text x="{x + 18:.1f}" y="48" fill="#333">{escape(words)}</text>'
        )
        x += 18 + len(words) * CHAR_WIDTH + 14
    return parts


def _box(box: Box, menu: Menu) -> str:
    node = box.node
    fill, stroke, _ = STYLES.get(node.kind, ("#ffffff", "#000000", ""))
    width = 3 if node.id == menu.start else 1.5
    lines = [
        f'<g class="node" data-id={quoteattr(node.id)} data-kind={quoteattr(node.kind)}>',
        f"<title>{escape(f'{node.id} ({node.kind}), {node.at}')}</title>",
        f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}" '
        f'height="{NODE_HEIGHT:.0f}" rx="6" fill="{fill}" stroke="{stroke}" '
        f'stroke-width="{width}"/>',
        f'<text x="{box.x + 8:.1f}" y="{box.y + 16:.1f}" font-weight="bold">'
        f"{escape(node.id)}</text>",
        f'<text x="{box.x + 8:.1f}" y="{box.y + 32:.1f}" fill="#444">'
        f"{escape(describe(node))}</text>",
    ]
    for index, edge in enumerate(box.badges):
        y = box.y + NODE_HEIGHT + BADGE_HEIGHT * index + 12
        lines.append(
            f'<g class="edge badge" data-from={quoteattr(edge.source)} '
            f"data-to={quoteattr(edge.target)} data-label={quoteattr(edge.label)}>"
            f'<text x="{box.x + 8:.1f}" y="{y:.1f}" fill="#555" font-style="italic">'
            f"{escape(_badge_text(edge))}</text></g>"
        )
    lines.append("</g>")
    return "".join(lines)


def _ends(edge: Edge, boxes: dict[str, Box]) -> tuple[float, float, float, float]:
    source, target = boxes[edge.source], boxes[edge.target]
    return (
        source.x + source.width,
        source.y + NODE_HEIGHT / 2,
        target.x,
        target.y + NODE_HEIGHT / 2,
    )


def _arrow(edge: Edge, boxes: dict[str, Box]) -> str:
    x1, y1, x2, y2 = _ends(edge, boxes)
    bend = (x2 - x1) / 2
    return (
        f'<g class="edge" data-from={quoteattr(edge.source)} data-to={quoteattr(edge.target)} '
        f"data-label={quoteattr(edge.label)}>"
        f'<path d="M {x1:.1f} {y1:.1f} C {x1 + bend:.1f} {y1:.1f} {x2 - bend:.1f} {y2:.1f} '
        f'{x2:.1f} {y2:.1f}" fill="none" stroke="#777" stroke-width="1.2" '
        'marker-end="url(#arrow)"/></g>'
    )


def _arrow_label(edge: Edge, boxes: dict[str, Box], crowded: set[str]) -> str:
    """Drawn after the boxes so no box hides it. Placed a quarter along the arrow, where the
    arrows out of a node are already apart, or three quarters along when the source fans out
    to many nodes (a menu's keys) and the target has this one labelled arrow in."""
    x1, y1, x2, y2 = _ends(edge, boxes)
    t = 0.3 if edge.target in crowded else 0.5
    # the cubic of _arrow at t: x is linear, y follows 3t^2 - 2t^3
    x = x1 + (x2 - x1) * t
    y = y1 + (y2 - y1) * (3 * t**2 - 2 * t**3)
    text = edge.label if len(edge.label) <= LABEL_CHARS else edge.label[: LABEL_CHARS - 1] + "…"
    width = len(text) * CHAR_WIDTH * 0.9 + 6
    return (
        f'<g class="label" data-from={quoteattr(edge.source)} data-to={quoteattr(edge.target)}>'
        f"<title>{escape(edge.label)}</title>"
        f'<rect x="{x - width / 2:.1f}" y="{y - 8:.1f}" width="{width:.1f}" height="14" '
        f'rx="3" fill="#ffffff" fill-opacity="0.9"/>'
        f'<text x="{x:.1f}" y="{y + 3:.1f}" text-anchor="middle" font-size="11" '
        f'fill="#1a4f8f">{escape(text)}</text></g>'
    )


def _crowded(arrows: list[Edge]) -> set[str]:
    """Targets with more than one labelled arrow in: their labels go near the sources."""
    counts: dict[str, int] = {}
    for edge in arrows:
        if edge.label:
            counts[edge.target] = counts.get(edge.target, 0) + 1
    return {target for target, count in counts.items() if count > 1}
