/* zone_read.h -- zone text (ldns syntax) read into an ldns_dnssec_zone,
 * record by record, within bounds. Zone files may come from third
 * parties: reading one must neither crash nor take quadratic time. */
#ifndef MXR_ZONE_READ_H
#define MXR_ZONE_READ_H

#include <ldns/ldns.h>
#include <stdio.h>

/* Records of one type at one name (ldns keeps them in a list that every
 * insertion walks), and types at one name. */
#define MXR__ZONE_RRSET_MAX 1000
#define MXR__ZONE_TYPES_MAX 256

/* Reads fp to its end into a new zone (*out, freed with
 * ldns_dnssec_zone_deep_free). Returns NULL on success, otherwise what
 * went wrong, with *line at the line it went wrong (nothing to free). */
const char *mxr__zone_read(FILE *fp, ldns_dnssec_zone **out, int *line);

#endif
