/* Unit tests of fs/blob (filled in with the blob module). */
#include "tap.h"
#include "blob.h"

int main(void)
{
	struct blob_limits l;

	blob_limits_default(&l);
	CHECK(l.max_output > 0, "default limits are set");
	return tap_done();
}
