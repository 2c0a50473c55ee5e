/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder test: replaced by the module tests. */
#include <CUnit/Basic.h>
int main(void) { return 0; }
