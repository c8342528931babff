"""The protobuf message types that carry the CEL library values without a JSON form.

cel-cpp's Python API converts plain values and protobuf messages, not arbitrary Python objects, so a Kubernetes
`quantity`, `url`, `ip`, `cidr`, `semver` or `format` value is a message of this small descriptor pool, built
with protobuf's public descriptor API. Each holds a canonical form (a quantity's exact value, an address's
normal form), so CEL's `==` on two messages (field by field) agrees with the Kubernetes library's equality.
"""

from __future__ import annotations

import functools
from typing import Any

from google.protobuf import descriptor_pb2, message_factory
from google.protobuf import descriptor_pool as pb_descriptor_pool

PACKAGE = "kubernetes"

# message name -> its string fields, in order
MESSAGES: dict[str, tuple[str, ...]] = {
    "Quantity": ("value",),  # the exact value, normalized: "-12.5", "3", "0.001"
    "URL": ("url",),
    "IP": ("address",),
    "CIDR": ("prefix",),
    "Semver": ("version",),
    "Format": ("name",),
    # format validation result: an optional list of strings (cel-cpp functions cannot return optionals)
    "FormatResult": ("errors", "present"),
    # RBAC checks (admission.engines.cel.authz): who asks, what for, and the answer
    "Authorizer": ("user", "groups"),
    "ResourceCheck": ("user", "groups", "group", "resource", "subresource", "namespace", "name"),
    "PathCheck": ("user", "groups", "path"),
    "Decision": ("allowed", "reason", "error"),
}

_REPEATED = {("FormatResult", "errors"), ("Authorizer", "groups"), ("ResourceCheck", "groups"),
             ("PathCheck", "groups")}
_BOOL = {("FormatResult", "present"), ("Decision", "allowed")}


@functools.cache
def descriptor_pool() -> Any:
    fdp = descriptor_pb2.FileDescriptorProto(name="admission_cel_library.proto", package=PACKAGE, syntax="proto3")
    for name, fields in MESSAGES.items():
        m = fdp.message_type.add(name=name)
        for number, fname in enumerate(fields, start=1):
            ftype = (descriptor_pb2.FieldDescriptorProto.TYPE_BOOL if (name, fname) in _BOOL
                     else descriptor_pb2.FieldDescriptorProto.TYPE_STRING)
            label = (descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED if (name, fname) in _REPEATED
                     else descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
            m.field.add(name=fname, number=number, type=ftype, label=label)
    pool = pb_descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return pool


@functools.cache
def message_class(name: str) -> Any:
    """The Python class of one of our messages, e.g. message_class("Quantity")(value="2")."""
    return message_factory.GetMessageClass(descriptor_pool().FindMessageTypeByName(f"{PACKAGE}.{name}"))


def type_name(name: str) -> str:
    return f"{PACKAGE}.{name}"
