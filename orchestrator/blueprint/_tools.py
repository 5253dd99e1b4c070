"""The tool names a Blueprint may bind to events and lifecycle hooks.

Two kinds: the desktop's own tools, which run in the browser (``ui.*``, ``app.*``,
``system.*`` dialogs and timers, ``hub.*``, simple ``math.*``, and the per-app helpers
the original's prebuilt apps call, such as ``notes.*`` and ``browser.*``), listed here;
and the server's service tools (``storage.*``, ``filesystem.*``, ...), which the
orchestrator's service registry supplies at validation time.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["DESKTOP_TOOLS"]

_DESKTOP: dict[str, str] = {
    # component state
    "ui.set": "Set a state key (by default the component's own) to a value.",
    "ui.get": "Read a state key.",
    "ui.set_state": "Alias of ui.set.",
    "ui.get_state": "Alias of ui.get.",
    "ui.set_multiple": "Set several state keys at once.",
    "ui.append": "Append text to a key (a display: a leading 0 is replaced by a digit).",
    "ui.clear": "Reset a key to its default (a display: 0).",
    "ui.toggle": "Flip a boolean key.",
    "ui.backspace": "Remove the last character of a key.",
    "ui.compute": "Evaluate an arithmetic expression (parsed, never eval'd) into a key.",
    "ui.evaluate": "Alias of ui.compute.",
    "ui.show": "Show a component.",
    "ui.hide": "Hide a component.",
    "ui.enable": "Enable a component.",
    "ui.disable": "Disable a component.",
    "ui.add_item": "Add an item to a list key.",
    "ui.remove_item": "Remove an item from a list key.",
    "ui.add_todo": "Add a to-do from the input.",
    "ui.toggle_todo": "Mark a to-do done or not.",
    "ui.delete_todo": "Delete a to-do.",
    # apps and windows
    "app.spawn": "Create an app from words (POST /generate-ui).",
    "app.close": "Close an app.",
    "app.list": "The running apps.",
    "app.focus": "Bring an app to the front.",
    "app.save_state": "Save the app's component state (PUT /apps/:id/state).",
    "app.load_state": "Load the app's component state (GET /apps/:id/state).",
    # the desktop
    "system.alert": "Show a message.",
    "system.confirm": "Ask yes or no.",
    "system.notify": "Show a notification.",
    "system.clipboard_copy": "Copy text to the clipboard.",
    "system.clipboard_paste": "Paste text from the clipboard.",
    "system.timer_start": "Start a timer that calls a tool repeatedly.",
    "system.timer_stop": "Stop a timer.",
    "system.undo": "Undo the last state change.",
    "system.redo": "Redo a state change.",
    "hub.load_apps": "Fill the hub with the registry's apps.",
    "hub.launch_app": "Launch an app from the registry.",
    "math.add": "a + b.",
    "math.subtract": "a - b.",
    "math.multiply": "a * b.",
    "math.divide": "a / b.",
    # helpers of the original's prebuilt apps
    "notes.list": "List the saved notes.",
    "notes.create": "Start a new note.",
    "notes.save": "Save the open note.",
    "notes.delete": "Delete the open note.",
    "browser.navigate": "Open the URL in the address bar.",
    "browser.back": "Go back.",
    "browser.forward": "Go forward.",
    "browser.refresh": "Reload the page.",
    "analysis.refresh": "Read the metrics now.",
    "analysis.start_auto_refresh": "Read the metrics every few seconds.",
    "analysis.stop_auto_refresh": "Stop reading the metrics.",
}

DESKTOP_TOOLS: Mapping[str, str] = MappingProxyType(_DESKTOP)
"""The desktop's own tools: name -> what it does."""
