"""Messages meant for people, translatable at the edge.

A `Message` is a plain English `str` (what logs, exceptions and tests see) that also keeps
its template and values, so the HTTP edge can render it in the client's language from one
catalogue (`shared.http.language`), gettext-style: the English template is the key. Values
that are Messages themselves (a record's kind, a scope) are translated too. Code that needs
no translation treats a Message as the string it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping


class Message(str):
    template: str
    values: Mapping[str, object]

    def __new__(cls, template: str, /, **values: object) -> Message:
        message = super().__new__(cls, template.format(**values))
        message.template = template
        message.values = values
        return message

    def render(self, translate: Callable[[str], str]) -> str:
        """The message with `translate` applied to its template and to every value that is
        a Message, as a plain `str`."""
        values = {
            name: value.render(translate) if isinstance(value, Message) else value
            for name, value in self.values.items()
        }
        return translate(self.template).format(**values)


def record_name(kind: str, record_id: object) -> Message:
    """How a message names one record: its kind (translated) and id."""
    return Message("{kind} {id}", kind=Message(kind), id=record_id)


__all__ = ["Message", "record_name"]
