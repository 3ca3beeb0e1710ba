"""The command palette (ctrl+p): presets, layer types, losses, optimizers, devices and actions."""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Iterator

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.markup import escape

from tui_nn import engine

from . import keys
from .safe import Text, line


def _prompt(label: str, matcher: Any | None = None) -> Text:
    """A literal Text (never parsed as markup), with the fuzzy-matched letters highlighted. `label` is printable
    already (`_commands`): the offsets of the match are those of the text shown."""
    text = Text(label)
    if matcher is not None:
        score, offsets = matcher.fuzzy_search.match(matcher.query, label)
        if score:
            for off in offsets:
                text.stylize("bold underline", off, off + 1)
    return text


class PlaygroundCommands(Provider):
    def _commands(self) -> Iterator[tuple[str, Callable[[], Any], str]]:
        app: Any = self.app
        for label, action, help_text in keys.palette_actions():
            yield label, partial(app.run_action_safely, action), help_text
        for stem, path, desc in app.palette_presets():  # a file's name and description: printable, then escaped
            yield f"Open preset: {line(stem)}", partial(app.open_preset_path, path), escape(line(desc))
        if app.session is None:
            return
        for name, lt in engine.CATALOGUE.items():
            yield f"Add layer: {name}", partial(app.add_layer_of_type, name), escape(lt.doc)
        for name, obj in engine.LOSSES.items():
            yield f"Loss: {name}", partial(app.choose_loss, name), escape(obj.doc)
        for name, obj in engine.OPTIMIZERS.items():
            yield f"Optimizer: {name}", partial(app.choose_optimizer, name), escape(obj.doc)
        for dev in app.devices:
            yield f"Device: {dev.name}", partial(app.choose_device, dev.name), escape(dev.label)

    async def discover(self) -> Hits:
        for label, command, help_text in self._commands():
            yield DiscoveryHit(_prompt(label), command, text=label, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for label, command, help_text in self._commands():
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, _prompt(label, matcher), command, text=label, help=help_text)
