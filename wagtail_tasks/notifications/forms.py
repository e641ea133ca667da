from django import forms
from django.utils.translation import gettext_lazy as _
from wagtail.models import Page


class SubscribeForm(forms.Form):
    email = forms.EmailField(label=_("Your email address"), max_length=254)
    page = forms.ModelChoiceField(queryset=Page.objects.none(), widget=forms.HiddenInput)
    include_descendants = forms.BooleanField(required=False, initial=True, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Live and public only: a private page's title must not show to, or be mailed to,
        # anyone. Built per form: public() reads the view restrictions when it is called.
        self.fields["page"].queryset = Page.objects.live().public()

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip()
