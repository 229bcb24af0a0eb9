"""Template filters for what people read (portal.display): `{{ amount|money }}`,
`{{ share|percent }}`, `{{ tier|named }}`, `{{ user|person }}`, `{{ tier.code|code }}`."""

from django import template

from portal import display

register = template.Library()


@register.filter
def money(amount):
    return display.money_text(amount)


@register.filter
def percent(value, places=1):
    return display.percent_text(value, int(places))


@register.filter
def named(row):
    return display.name_of(row)


@register.filter
def person(user):
    return display.person_name(user)


@register.filter
def code(value):
    return display.code_html(value) if value else ""
