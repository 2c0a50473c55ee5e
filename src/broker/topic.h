/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Topic names and filters (MQTT 3.1.1 section 4.7). The rules, written down:
 *  - a topic name is non-empty, at most 65535 bytes, and has no '+' or '#';
 *  - a filter is non-empty; '#' only as the whole last level; '+' only as a
 *    whole level; levels may be empty ("a//b", "/a");
 *  - "a/#" also matches "a" (the parent level);
 *  - a filter starting with '+' or '#' does not match a topic starting
 *    with '$'; "$SYS/#" does.
 * UTF-8 validity is checked by the codec, not here.
 */
#ifndef GW_TOPIC_H
#define GW_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

bool	topic_name_valid(const char *t, size_t len);
bool	topic_filter_valid(const char *f, size_t len);

/* Reference matcher: does filter f match topic name t? (Both valid.) */
bool	topic_matches(const char *f, size_t flen, const char *t, size_t tlen);

#endif
