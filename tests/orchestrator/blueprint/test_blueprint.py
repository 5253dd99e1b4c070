"""Blueprints: the original's own files load unchanged and round-trip; both component forms
give one canonical form; every rule's failure names its JSON path."""

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.blueprint import (
    COMPONENT_TYPES,
    MAX_SPEC_BYTES,
    BlueprintError,
    parse_blueprint,
)

ORIGINALS = sorted(
    Path(__file__).parents[3].joinpath("../shared/reference/original-apps").glob("*/*.bp")
)
if not ORIGINALS:  # the checkout may sit elsewhere than beside shared/
    ORIGINALS = sorted(Path("/work/shared/reference/original-apps").glob("*/*.bp"))
OURS = sorted(Path(__file__).parents[3].joinpath("apps").glob("**/*.bp"))
SERVER_TOOLS = {"filesystem.list", "system.info", "storage.get", "storage.set"}


def spec(*components, **extra):
    return {"app": {"id": "t", "name": "T"}, "ui": {"components": list(components)}, **extra}


def problems(data, **kwargs):
    with pytest.raises(BlueprintError) as failure:
        parse_blueprint(data, **kwargs)
    return {d["loc"]: d["msg"] for d in failure.value.details}


def walk(components):
    for component in components:
        yield component
        yield from walk(component.children)


def test_the_originals_are_here():
    assert len(ORIGINALS) == 6


@pytest.mark.parametrize("path", ORIGINALS + OURS, ids=lambda p: p.name)
def test_a_file_loads_unchanged_and_round_trips(path):
    raw = path.read_bytes()
    blueprint = parse_blueprint(raw, server_tools=SERVER_TOOLS)
    assert path.read_bytes() == raw
    assert {c.type for c in walk(blueprint.ui.components)} <= COMPONENT_TYPES
    again = parse_blueprint(json.dumps(blueprint.to_json()), server_tools=SERVER_TOOLS)
    assert again == blueprint
    assert again.to_json() == blueprint.to_json()


def test_rows_columns_and_roles_become_containers():
    by_name = {
        p.stem: parse_blueprint(p.read_bytes(), server_tools=SERVER_TOOLS) for p in ORIGINALS
    }
    toolbar = by_name["browser"].ui.components[0]  # the original left its explicit row as is
    assert (toolbar.type, toolbar.id, toolbar.props["layout"]) == (
        "container",
        "toolbar",
        "horizontal",
    )
    sidebar, main = by_name["file-explorer"].ui.components
    assert (sidebar.type, sidebar.props["role"], main.props["role"]) == (
        "container",
        "sidebar",
        "main",
    )
    home = sidebar.children[1].children[0]
    assert (home.id, home.type, home.on_event) == (
        "home-btn",
        "button",
        {"click": ["filesystem.list"]},
    )
    assert by_name["notes"].ui.lifecycle.on_mount == ["notes.list"]
    assert by_name["notes"].policy_name() == "standard"
    assert by_name["file-explorer"].capabilities() == [
        "read_file", "write_file", "create_file", "delete_file", "list_directory"
    ]  # fmt: skip
    grids = [c for c in walk(by_name["hub"].ui.components) if c.type == "grid"]
    assert grids
    assert all(isinstance(g.props["columns"], int) for g in grids)


def test_the_shorthand_and_explicit_forms_are_one():
    shorthand = spec(
        {"row#bar": {"gap": 4, "children": [
            {"button#go": {"text": "Go", "@click": "ui.set", "$if": "ready"}},
            "plain words",
        ]}},
    )  # fmt: skip
    explicit = spec(
        {"type": "row", "id": "bar", "props": {"gap": 4}, "children": [
            {"type": "button", "id": "go", "props": {"text": "Go"},
             "on_event": {"click": ["ui.set"]}, "$if": "ready"},
            {"type": "text", "id": "text-1", "props": {"content": "plain words"}},
        ]},
    )  # fmt: skip
    assert parse_blueprint(shorthand) == parse_blueprint(explicit)
    bar = parse_blueprint(shorthand).to_json()["ui"]["components"][0]
    assert bar["children"][0]["$if"] == "ready"


def test_templates_from_both_places_under_the_components_own_props():
    data = spec(
        {"button#a": {"$template": "primary", "text": "A"}},
        {"type": "button", "id": "b", "$template": "quiet", "props": {"text": "B", "size": "lg"}},
        templates={"primary": {"variant": "primary", "text": "?"}},
    )
    data["ui"]["templates"] = {"quiet": {"variant": "ghost", "size": "sm"}}
    a, b = parse_blueprint(data).ui.components
    assert a.props == {"variant": "primary", "text": "A"}
    assert b.props == {"variant": "ghost", "size": "lg", "text": "B"}


@pytest.mark.parametrize(
    ("component", "path", "needle"),
    [
        ({"type": "carousel"}, "ui.components[0].type", "unknown component type"),
        ({"grid#g": {"columns": 13}}, "ui.components[0].grid#g.props.columns", "1 to 12"),
        ({"type": "text", "props": {}}, "ui.components[0].props.content", "needs 'content'"),
        ({"type": "image", "props": {"src": "a.png", "style": "red"}},
         "ui.components[0].props.style", "CSS"),
        ({"button#b": {"$if": "a = b"}}, "ui.components[0].button#b.$if", "not a state key"),
        ({"list#l": {"$for": "for x in y"}}, "ui.components[0].list#l.$for", "'item in key'"),
        ({"button#b": {"$template": "nope"}}, "ui.components[0].button#b.$template", "no template"),
        ({"type": "button", "onClick": "x"}, "ui.components[0]", "unknown keys"),
        ({"row": {"children": [{"button#x": {"@Click": "ui.set"}}]}},
         "ui.components[0].row.children[0].button#x.on_event.Click", "not an event name"),
        (42, "ui.components[0]", "object or a string"),
    ],
)  # fmt: skip
def test_each_rule_names_the_path_of_what_breaks_it(component, path, needle):
    found = problems(spec(component))
    assert path in found, found
    assert needle in found[path]


def test_unknown_tools_are_refused_where_they_are_bound():
    data = spec({"col": {"children": [{"button#b": {"@click": "storage.get"}}]}})
    data["ui"]["lifecycle"] = {"on_mount": ["ui.set", "magic.wand"]}
    found = problems(data)
    assert found == {
        "ui.lifecycle.on_mount[1]": "unknown tool 'magic.wand'",
        "ui.components[0].children[0].on_event.click[0]": "unknown tool 'storage.get'",
    }
    data["ui"]["lifecycle"] = {}
    assert parse_blueprint(data, server_tools={"storage.get"}).tools() == {"storage.get"}


def test_ids_are_unique_and_generated_when_missing():
    found = problems(
        spec({"button#x": {"text": "1"}}, {"type": "text", "id": "x", "props": {"content": "2"}})
    )
    assert "already" not in json.dumps(found)
    assert "ui.components[1].id" in found
    blueprint = parse_blueprint(spec({"type": "divider"}, {"type": "divider"}, "hi"))
    assert [c.id for c in blueprint.ui.components] == ["divider-1", "divider-2", "text-1"]


def test_the_process_section_is_what_the_kernel_can_run():
    ok = parse_blueprint(
        spec(process={"command": ["python3", "-m", "http.server"], "workdir": "/data"})
    )
    assert ok.process is not None
    assert ok.process.command[0] == "python3"
    found = problems(spec(process={"command": [], "env": {"BAD NAME": "x"}, "workdir": "data/.."}))
    assert set(found) == {"process.command", "process.env", "process.workdir"}


def test_services_in_every_original_form():
    blueprint = parse_blueprint(
        spec(services=["storage", {"filesystem": ["list", "read"]}, {"http": "*"},
                       {"fs": {"tools": ["read"], "root": "/data", "scope": "app"}}])
    )  # fmt: skip
    assert [(s.name, s.tools) for s in blueprint.services] == [
        ("storage", "*"), ("filesystem", ["list", "read"]), ("http", "*"), ("fs", ["read"])
    ]  # fmt: skip
    assert blueprint.services[3].options == {"root": "/data", "scope": "app"}
    assert "services[0]" in problems(spec(services=[{"a": [], "b": []}]))


def test_size_json_and_shape_are_checked_first():
    big = json.dumps(spec({"type": "text", "props": {"content": "x" * MAX_SPEC_BYTES}}))
    assert "at most" in problems(big)[""]
    assert "line 2 column 1" in problems('{"app":\n}')[""]
    assert "ui" in problems({"app": {"id": "t", "name": "T"}})
    assert "app.id" in problems({"app": {"id": "no spaces", "name": "T"}, "ui": {}})


leaf = st.fixed_dictionaries(
    {"type": st.sampled_from(["button", "divider", "badge", "checkbox"]),
     "props": st.dictionaries(
         st.sampled_from(["text", "variant", "size"]), st.text(max_size=5), max_size=2
     )}
)  # fmt: skip
tree = st.recursive(
    leaf,
    lambda children: st.builds(
        lambda kind, props, kids: {"type": kind, "props": props, "children": kids},
        st.sampled_from(["row", "col", "sidebar", "card", "list"]),
        st.dictionaries(st.sampled_from(["gap", "padding"]), st.integers(0, 9), max_size=2),
        st.lists(children, max_size=3),
    ),
    max_leaves=12,
)


def as_shorthand(component):
    body = dict(component["props"])
    if component.get("children"):
        body["children"] = [as_shorthand(c) for c in component["children"]]
    return {component["type"]: body}


@settings(max_examples=60, deadline=None)
@given(components=st.lists(tree, max_size=4))
def test_canonical_is_a_fixed_point_and_forms_agree(components):
    explicit = parse_blueprint(spec(*copy.deepcopy(components)))
    assert parse_blueprint(explicit.to_json()) == explicit
    assert parse_blueprint(spec(*[as_shorthand(c) for c in components])) == explicit
