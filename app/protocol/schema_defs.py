"""The SCIM schemas rollcall serves (RFC 7643 §4, §8.7), as data.

Everything that needs to know an attribute's type, case sensitivity or mutability reads it from
here: the marshmallow resource schemas, the filter and PATCH engines, projection and /Schemas.
"""

from __future__ import annotations

from dataclasses import dataclass, field

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SERVICE_PROVIDER_CONFIG_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"


@dataclass(frozen=True, eq=False)
class Attribute:
    name: str
    type: str = "string"  # string boolean decimal integer dateTime reference binary complex
    multi_valued: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"  # readOnly readWrite immutable writeOnly
    returned: str = "default"  # always never default request
    uniqueness: str = "none"
    description: str = ""
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    sub_attributes: tuple[Attribute, ...] = ()

    def sub(self, name: str) -> Attribute | None:
        """The sub-attribute called `name`, matched case-insensitively (RFC 7643 §2.1)."""
        return _by_name(self.sub_attributes, name)

    @property
    def is_complex(self) -> bool:
        return self.type == "complex"


@dataclass(frozen=True, eq=False)
class Schema:
    id: str
    name: str
    description: str
    attributes: tuple[Attribute, ...]

    def attribute(self, name: str) -> Attribute | None:
        return _by_name(self.attributes, name)


@dataclass(frozen=True, eq=False)
class ResourceType:
    """A resource type with its core schema and extensions (RFC 7643 §6)."""

    name: str
    endpoint: str
    description: str
    schema: Schema
    extensions: tuple[Schema, ...] = field(default=())

    @property
    def schema_ids(self) -> tuple[str, ...]:
        return (self.schema.id, *(ext.id for ext in self.extensions))

    def extension(self, urn: str) -> Schema | None:
        return next((ext for ext in self.extensions if ext.id.lower() == urn.lower()), None)

    def schema_for(self, urn: str | None) -> Schema | None:
        """The schema named by `urn` (the core schema when `urn` is None)."""
        if urn is None or urn.lower() == self.schema.id.lower():
            return self.schema
        return self.extension(urn)


def _by_name(attributes: tuple[Attribute, ...], name: str) -> Attribute | None:
    lowered = name.lower()
    return next((a for a in attributes if a.name.lower() == lowered), None)


def _multi(name: str, description: str, types: tuple[str, ...], value: Attribute | None = None,
           extra: tuple[Attribute, ...] = ()) -> Attribute:
    """The shape RFC 7643 §2.4 gives most multi-valued attributes: value, display, type, primary."""
    return Attribute(
        name, "complex", multi_valued=True, description=description,
        sub_attributes=(
            value or Attribute("value", description=f"The {name} value."),
            Attribute("display", description="A human-readable name, primarily used for display."),
            Attribute("type", canonical_values=types, description="A label indicating the function."),
            Attribute("primary", "boolean", description="Whether this is the primary value."),
            *extra,
        ),
    )


_USER_ATTRIBUTES = (
    Attribute("userName", required=True, uniqueness="server",
              description="Unique identifier for the User, typically used to sign in."),
    Attribute("name", "complex", description="The components of the user's name.", sub_attributes=(
        Attribute("formatted", description="The full name, formatted for display."),
        Attribute("familyName", description="The family name (last name)."),
        Attribute("givenName", description="The given name (first name)."),
        Attribute("middleName", description="The middle name(s)."),
        Attribute("honorificPrefix", description="The honorific prefix (title)."),
        Attribute("honorificSuffix", description="The honorific suffix."),
    )),
    Attribute("displayName", description="The name of the User, suitable for display."),
    Attribute("nickName", description="The casual way to address the user."),
    Attribute("profileUrl", "reference", reference_types=("external",),
              description="A URI to the user's online profile."),
    Attribute("title", description="The user's title, such as 'Vice President'."),
    Attribute("userType", description="The relationship between the organization and the user."),
    Attribute("preferredLanguage", description="The user's preferred written or spoken language."),
    Attribute("locale", description="The user's default location for localization."),
    Attribute("timezone", description="The user's time zone, in IANA format."),
    Attribute("active", "boolean", description="The user's administrative status."),
    Attribute("password", mutability="writeOnly", returned="never",
              description="Accepted for compatibility; rollcall never stores it."),
    _multi("emails", "Email addresses for the user.", ("work", "home", "other")),
    _multi("phoneNumbers", "Phone numbers for the user.", ("work", "home", "mobile", "fax", "pager", "other")),
    _multi("ims", "Instant messaging addresses for the user.",
           ("aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo")),
    _multi("photos", "URLs of photos of the user.", ("photo", "thumbnail"),
           value=Attribute("value", "reference", reference_types=("external",), description="URL of a photo.")),
    Attribute("addresses", "complex", multi_valued=True, description="Physical mailing addresses.",
              sub_attributes=(
                  Attribute("formatted", description="The full mailing address, formatted for display."),
                  Attribute("streetAddress", description="The full street address component."),
                  Attribute("locality", description="The city or locality component."),
                  Attribute("region", description="The state or region component."),
                  Attribute("postalCode", description="The zip code or postal code component."),
                  Attribute("country", description="The country name component."),
                  Attribute("type", canonical_values=("work", "home", "other"),
                            description="A label indicating the function."),
                  Attribute("primary", "boolean", description="Whether this is the primary address."),
              )),
    Attribute("groups", "complex", multi_valued=True, mutability="readOnly",
              description="The groups the user belongs to, maintained through the Group resource.",
              sub_attributes=(
                  Attribute("value", mutability="readOnly", description="The id of the Group."),
                  Attribute("$ref", "reference", mutability="readOnly", reference_types=("Group",),
                            description="The URI of the Group."),
                  Attribute("display", mutability="readOnly", description="The Group's displayName."),
                  Attribute("type", mutability="readOnly", canonical_values=("direct", "indirect"),
                            description="How the membership was derived."),
              )),
    _multi("entitlements", "Entitlements for the user.", ()),
    _multi("roles", "Roles for the user, as sent by the identity provider.", ()),
    _multi("x509Certificates", "X.509 certificates issued to the user.", (),
           value=Attribute("value", "binary", description="A DER-encoded X.509 certificate.")),
)

_ENTERPRISE_ATTRIBUTES = (
    Attribute("employeeNumber", description="A string identifier, typically numeric or alphanumeric."),
    Attribute("costCenter", description="The name of a cost center."),
    Attribute("organization", description="The name of an organization."),
    Attribute("division", description="The name of a division."),
    Attribute("department", description="The name of a department."),
    Attribute("manager", "complex", description="The user's manager.", sub_attributes=(
        Attribute("value", description="The id of the manager's User."),
        Attribute("$ref", "reference", reference_types=("User",), description="The URI of the manager's User."),
        Attribute("displayName", mutability="readOnly", description="The manager's displayName."),
    )),
)

_GROUP_ATTRIBUTES = (
    Attribute("displayName", required=True, uniqueness="server",
              description="A human-readable name for the Group; role groups are recognised by it."),
    Attribute("members", "complex", multi_valued=True, description="The members of the Group.",
              sub_attributes=(
                  Attribute("value", mutability="immutable", description="The id of the member User."),
                  Attribute("$ref", "reference", mutability="immutable", reference_types=("User",),
                            description="The URI of the member User."),
                  # RFC 7643 §2.4, §8.4: derived from the member (its displayName, else its userName); any
                  # `display` a client sends is ignored. Returned when asked for (attributes=members.display):
                  # clients that compare the members they wrote with the ones they read back (scim2-tester
                  # among them) find a display they never sent, so it is not in the default representation.
                  Attribute("display", mutability="readOnly", returned="request",
                            description="The member's displayName, or its userName when it has none; returned "
                                        "only when requested, e.g. attributes=members,members.display."),
                  Attribute("type", mutability="immutable", canonical_values=("User",),
                            description="The type of the member; rollcall groups hold Users."),
              )),
)

USER = Schema(USER_SCHEMA, "User", "User Account", _USER_ATTRIBUTES)
ENTERPRISE_USER = Schema(ENTERPRISE_USER_SCHEMA, "EnterpriseUser", "Enterprise User", _ENTERPRISE_ATTRIBUTES)
GROUP = Schema(GROUP_SCHEMA, "Group", "Group", _GROUP_ATTRIBUTES)

USER_RESOURCE = ResourceType("User", "/Users", "User Account", USER, (ENTERPRISE_USER,))
GROUP_RESOURCE = ResourceType("Group", "/Groups", "Group", GROUP)
RESOURCE_TYPES = (USER_RESOURCE, GROUP_RESOURCE)
SCHEMAS = (USER, ENTERPRISE_USER, GROUP)

# Attributes every resource carries outside its schemas (RFC 7643 §3.1).
COMMON_ATTRIBUTES = (
    Attribute("id", case_exact=True, mutability="readOnly", returned="always", uniqueness="server"),
    Attribute("externalId", case_exact=True),
    Attribute("meta", "complex", mutability="readOnly", sub_attributes=(
        Attribute("resourceType", case_exact=True, mutability="readOnly"),
        Attribute("created", "dateTime", mutability="readOnly"),
        Attribute("lastModified", "dateTime", mutability="readOnly"),
        Attribute("location", "reference", case_exact=True, mutability="readOnly"),
        Attribute("version", case_exact=True, mutability="readOnly"),
    )),
)


@dataclass(frozen=True, eq=False)
class ResolvedAttribute:
    """Where an attribute path lands: the schema that holds it (None for common attributes),
    the attribute, and the sub-attribute when the path names one."""

    schema_id: str | None
    attribute: Attribute
    sub_attribute: Attribute | None = None


# What resolve() answered, by its arguments: the schemas never change, and the filters and projections of
# requests name the same few attributes again and again. Bounded, since the names come from clients.
_resolved: dict[tuple[ResourceType, str | None, str, str | None], ResolvedAttribute | None] = {}
_MAX_RESOLVED = 4096


def resolve(resource_type: ResourceType, uri: str | None, name: str, sub: str | None = None
            ) -> ResolvedAttribute | None:
    """Resolve `[uri:]name[.sub]` against a resource type, case-insensitively; None if unknown."""
    key = (resource_type, uri, name, sub)
    try:
        return _resolved[key]
    except KeyError:
        pass
    found = _resolve(resource_type, uri, name, sub)
    if len(_resolved) < _MAX_RESOLVED:
        _resolved[key] = found
    return found


def _resolve(resource_type: ResourceType, uri: str | None, name: str, sub: str | None) -> ResolvedAttribute | None:
    if uri is None:
        common = _by_name(COMMON_ATTRIBUTES, name)
        if common is not None:
            return _with_sub(None, common, sub)
    schema = resource_type.schema_for(uri)
    if schema is None:
        return None
    attribute = schema.attribute(name)
    if attribute is None:
        return None
    return _with_sub(schema.id, attribute, sub)


def _with_sub(schema_id: str | None, attribute: Attribute, sub: str | None) -> ResolvedAttribute | None:
    if sub is None:
        return ResolvedAttribute(schema_id, attribute)
    sub_attribute = attribute.sub(sub)
    if sub_attribute is None:
        return None
    return ResolvedAttribute(schema_id, attribute, sub_attribute)
