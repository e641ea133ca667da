from django import forms
from django.utils.translation import gettext_lazy as _
from wagtail.models import Page


class SubscribeForm(forms.Form):
    email = forms.EmailField(label=_("Your email address"), max_length=254)
    page = forms.ModelChoiceField(queryset=Page.objects.live(), widget=forms.HiddenInput)
    include_descendants = forms.BooleanField(required=False, initial=True, widget=forms.HiddenInput)

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip()
