"""The email channel: mail out over SMTP, replies in by SMTP or from a mail provider's webhook.

Out (``adapter``): every mail has a text and an HTML part from the templates in
``templates/`` (``<name>.<nl|en>.<txt|html>.j2``; names without their own templates use
``notice``), the hub's own Message-ID (recorded as the outbox row's provider id), and a
Reply-To ``reply+<token>@HUB_INBOUND_MAIL_DOMAIN`` whose signed token names the case and its
party (``tokens``). Set HUB_SMTP_HOST (and port, security, user, password) to send; without
it mail stays in the development outbox.

In: point the MX record of HUB_INBOUND_MAIL_DOMAIN at ``hub mail-receiver`` (``receiver``),
or have a mail provider POST each raw message to ``/api/inbound/email`` with
``Authorization: Bearer HUB_INBOUND_MAIL_SECRET`` (``routes``). Both call
``inbound.receive_mail``: threaded by the token, else by In-Reply-To/References naming a mail
the hub sent; quotes and signatures cut from the shown text (``quotes``), the original and
the raw MIME kept; attachments through the document store; anything unmatched to the review
queue. The From address never identifies anyone.

Bounces: a delivery status notification (RFC 3464) about a mail the hub sent ends that
delivery in permanent-failure and passes the message to the next channel. Bounces go to the
envelope sender, which is the address in HUB_MAIL_FROM: give it an address at
HUB_INBOUND_MAIL_DOMAIN (``noreply@<inbound domain>``) for them to reach the hub.
"""
