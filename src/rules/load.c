/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder: not written yet. */
typedef int placeholder_unused_t;
