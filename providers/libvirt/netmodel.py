"""libvirt network XML ⇄ the full ``network`` attribute shape, by the table in
:mod:`netshape` (pure functions; nothing here imports libvirt).

``parse`` gives the attributes of every modelled element, ``kept`` (the verbatim
XML of the unknown top-level elements: someone else's ``<metadata>``, a future
element) and ``lost`` (what is neither modelled nor keepable: an unknown
attribute or an unknown element inside a modelled block, named by its path).
``render`` writes attributes (and ``kept``) back as a ``<network>`` element.
"""
from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from typing import Any

from kvmnet.providers.libvirt.netshape import BOOLS, INT, LIBVIRT_FILLS, NETWORK, El

KVMNET_NS = "https://kvmnet.dev/xmlns/1"
OWNER_TAG = f"{{{KVMNET_NS}}}owner"
_ROOT_TEXT = ("name", "uuid")


def _value(kind: str, text: str) -> Any:
    """An XML attribute value as its attribute value; ValueError when it is not one."""
    if kind == INT:
        return int(text, 10)
    if kind in BOOLS:
        yes, no = BOOLS[kind]
        if text in (yes, no):
            return text == yes
        raise ValueError(text)
    return text


def _text(kind: str, value: Any) -> str:
    if kind in BOOLS:
        return BOOLS[kind][0 if value else 1]
    return str(value)


def parse_element(el: ET.Element, spec: El, path: str, lost: list[str]) -> dict:
    """One modelled element as a block (dict); unknown parts named in ``lost``."""
    out: dict[str, Any] = {}
    fills = LIBVIRT_FILLS.get(spec.tag, ())
    for name, text in el.attrib.items():
        a = spec.attr(name)
        if a is None:
            if name not in fills:
                lost.append(f"{path} attribute {name}={text!r}")
            continue
        try:
            out[a.key] = _value(a.kind, text)
        except ValueError:
            lost.append(f"{path} attribute {name}={text!r} (not a {a.kind} value)")
    for child in el:
        if not isinstance(child.tag, str):      # a comment or processing instruction
            continue
        c = spec.child(child.tag)
        if c is None:
            lost.append(f"{path}: element <{_short(child.tag)}>")
            continue
        cpath = f"{path}.{c.key}" if path else c.key
        if c.text:
            value: Any = (child.text or "").strip()
        else:
            if c.many:
                cpath = f"{cpath}[{len(out.get(c.key) or [])}]"
            value = parse_element(child, c, cpath, lost)
        if c.many:
            out.setdefault(c.key, []).append(value)
        elif c.key in out:
            lost.append(f"{cpath}: a second <{_short(child.tag)}>")
        else:
            out[c.key] = value
    return out


def _short(tag: str) -> str:
    return tag.rpartition("}")[2]


def parse(xml: str) -> tuple[dict, str | None, list[str]]:
    """(attributes with ``kept``, kvmnet's mark or None, what would be lost)."""
    _register_prefixes(xml)
    root = ET.fromstring(xml)
    kept: list[str] = []
    mark = None
    modelled = ET.Element(root.tag, root.attrib)
    for child in root:
        if not isinstance(child.tag, str):
            continue
        if child.tag == "metadata":
            owner = child.find(OWNER_TAG)
            if owner is not None:
                mark = (owner.text or "").strip() or None
                child.remove(owner)
            if len(child):
                kept.append(_xml(child))
        elif NETWORK.child(child.tag) is None:
            kept.append(_xml(child))
        else:
            modelled.append(child)
    lost: list[str] = []
    attrs = parse_element(modelled, NETWORK, "", lost)
    attrs["kept"] = kept
    return attrs, mark, lost


def _xml(el: ET.Element) -> str:
    tail, el.tail = el.tail, None
    try:
        return ET.tostring(el, encoding="unicode")
    finally:
        el.tail = tail


def _register_prefixes(xml: str) -> None:
    """Keep the document's own namespace prefixes when writing kept parts back."""
    for _event, (prefix, uri) in ET.iterparse(io.StringIO(xml), events=("start-ns",)):
        if prefix and not prefix.startswith("ns"):
            try:
                ET.register_namespace(prefix, uri)
            except ValueError:
                pass


# -- attributes → XML ---------------------------------------------------------------------
def render_element(tag: str, block: dict, spec: El) -> ET.Element:
    el = ET.Element(tag)
    fill_element(el, block, spec)
    return el


def fill_element(el: ET.Element, block: dict, spec: El) -> None:
    for a in spec.attrs:
        v = block.get(a.key)
        if v is not None:
            el.set(a.xml, _text(a.kind, v))
    for c in spec.children:
        v = block.get(c.key)
        if v is None:
            continue
        items = v if c.many else [v]
        for item in items:
            if c.text:
                ET.SubElement(el, c.tag).text = str(item)
            elif isinstance(item, dict):
                el.append(render_element(c.tag, item, c))


def render(attrs: dict, mark: str | None = None) -> ET.Element:
    """A ``<network>`` element for canonical attributes, kept parts and mark included."""
    net = ET.Element("network")
    fill_element(net, attrs, NETWORK)
    metadata = None
    for text in attrs.get("kept") or []:
        part = ET.fromstring(text)
        if part.tag == "metadata":
            metadata = part
        net.append(part)
    if mark:
        if metadata is None:
            metadata = ET.Element("metadata")
            pos = sum(1 for c in net if c.tag in _ROOT_TEXT)
            net.insert(pos, metadata)
        ET.SubElement(metadata, OWNER_TAG).text = mark
    return net


def render_text(attrs: dict, mark: str | None = None) -> str:
    return ET.tostring(render(attrs, mark), encoding="unicode")
