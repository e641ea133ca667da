from django import template

from wagtail_tasks.notifications.forms import SubscribeForm

register = template.Library()


@register.inclusion_tag("wagtail_tasks/notifications/subscribe_form.html", takes_context=True)
def subscribe_form(context, page, include_descendants=True):
    """``{% subscribe_form page %}``: a form to subscribe to ``page`` (and pages below it)."""
    form = SubscribeForm(
        initial={"page": page.pk, "include_descendants": include_descendants},
        # Ids of their own: a page can show several forms (one per section).
        auto_id=f"id_subscribe_{page.pk}_%s",
    )
    return {"form": form, "page": page, "request": context.get("request")}
