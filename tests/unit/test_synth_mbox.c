/* test_synth_mbox.c - the inline middlebox rewriting rules of the
 * synthesizer (SIGNATURES.md A1-A8, P1-P3), on bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pcaps/synth/mbox.h"

#define MS (1000000LL)

struct box {
    struct mb_cfg cfg;
    struct mb_insp *in;
    sc_time t;
};

static void box_init(struct box *b, enum mb_model m)
{
    mb_cfg_defaults(&b->cfg, m);
    b->in = NULL;
    b->t = 0;
}

static void box_start(struct box *b)
{
    b->in = mb_insp_new(&b->cfg);
}

/* Passes text through one direction as one segment; returns the verdict and
 * leaves the rewritten bytes in out. */
static enum mb_verdict pass(struct box *b, enum sc_dir dir, const char *text, char *out)
{
    size_t n = strlen(text);
    memcpy(out, text, n + 1);
    b->t += MS;
    return mb_insp_segment(b->in, dir, (uint8_t *)out, n, b->t);
}

static void expect(struct box *b, enum sc_dir dir, const char *text, const char *want)
{
    char out[4096];
    assert_int_equal(pass(b, dir, text, out), MB_FORWARD);
    assert_string_equal(out, want);
}

static void greet(struct box *b)
{
    char out[256];
    pass(b, SC_DIR_S2C, "220 mx ESMTP\r\n", out);
}

static void test_banner_a1_default_masks_all_but_2_and_0(void **state)
{
    (void)state;
    struct box b;
    box_init(&b, MB_ASA_DEFAULT);
    box_start(&b);
    /* The documented example: 220 mail2.example.com ESMTP -> 220 ****2****... */
    expect(&b, SC_DIR_S2C, "220 mail2.example.com ESMTP\r\n", "220 ****2******************\r\n");
    mb_insp_free(b.in);
}

static void test_banner_a1_variants(void **state)
{
    (void)state;
    struct box b;
    box_init(&b, MB_ASA_DEFAULT);
    b.cfg.mask_spaces = false;
    box_start(&b);
    expect(&b, SC_DIR_S2C, "220 mx20 ESMTP ready\r\n", "220 **20 ***** *****\r\n");
    mb_insp_free(b.in);
    box_init(&b, MB_ASA_DEFAULT);
    b.cfg.no_space_after_code = true;
    box_start(&b);
    expect(&b, SC_DIR_S2C, "220 mx ESMTP\r\n", "220*********\r\n");
    mb_insp_free(b.in);
    box_init(&b, MB_PIX44);
    box_start(&b);
    expect(&b, SC_DIR_S2C, "220 mx20 ESMTP\r\n", "220 **********\r\n");
    mb_insp_free(b.in);
}

static void test_banner_a2_multiline_loses_its_codes(void **state)
{
    (void)state;
    struct box b;
    box_init(&b, MB_ASA_DEFAULT);
    box_start(&b);
    expect(&b, SC_DIR_S2C, "220-mx ESMTP\r\n220-no spam\r\n220 ready\r\n",
           "220-********\r\n***********\r\n*********\r\n");
    /* The banner is over (judged on the original bytes): replies pass. */
    expect(&b, SC_DIR_C2S, "NOOP\r\n", "NOOP\r\n");
    expect(&b, SC_DIR_S2C, "250 2.0.0 Ok\r\n", "250 2.0.0 Ok\r\n");
    mb_insp_free(b.in);
}

static void test_ehlo_keywords_a3_a4(void **state)
{
    (void)state;
    struct box b;
    box_init(&b, MB_ASA_DEFAULT);
    box_start(&b);
    greet(&b);
    expect(&b, SC_DIR_C2S, "EHLO client\r\n", "EHLO client\r\n");
    expect(&b, SC_DIR_S2C,
           "250-mx Hello\r\n250-PIPELINING\r\n250-STARTTLS\r\n250-VRFY\r\n250-AUTH=LOGIN\r\n"
           "250-AUTH GSSAPI NTLM\r\n250-SIZE 1000\r\n250 OK\r\n",
           "250-mx Hello\r\n250-PIPELINING\r\n250-XXXXXXXA\r\n250-XXXB\r\n250-XXXXXXXXXC\r\n"
           "250-AUTH GSSAPI NTLM\r\n250-SIZE 1000\r\n250 XD\r\n");
    /* The letters start over with the next EHLO reply. */
    expect(&b, SC_DIR_C2S, "EHLO client\r\n", "EHLO client\r\n");
    expect(&b, SC_DIR_S2C, "250-mx\r\n250 CHUNKING\r\n", "250-mx\r\n250 XXXXXXXA\r\n");
    mb_insp_free(b.in);

    box_init(&b, MB_ASA_ALLOW_TLS);
    box_start(&b);
    greet(&b);
    expect(&b, SC_DIR_C2S, "EHLO c\r\n", "EHLO c\r\n");
    expect(&b, SC_DIR_S2C, "250-mx\r\n250-STARTTLS\r\n250 VRFY\r\n",
           "250-mx\r\n250-STARTTLS\r\n250 XXXA\r\n");
    mb_insp_free(b.in);
}

static void test_verbs_a5(void **state)
{
    (void)state;
    struct box b;
    box_init(&b, MB_ASA_DEFAULT);
    box_start(&b);
    greet(&b);
    expect(&b, SC_DIR_C2S, "STARTTLS\r\n", "XXXXXXXX\r\n");
    expect(&b, SC_DIR_S2C, "500 5.5.1 Command unrecognized: \"XXXXXXXX\"\r\n",
           "500 5.5.1 Command unrecognized: \"XXXXXXXX\"\r\n");
    expect(&b, SC_DIR_C2S, "XEXCH50 1024 2\r\n", "XXXXXXX 1024 2\r\n");
    expect(&b, SC_DIR_C2S, "ehlo lower.case\r\n", "ehlo lower.case\r\n");
    expect(&b, SC_DIR_C2S, "MAIL FROM:<a@b> SIZE=10\r\nRCPT TO:<c@d>\r\nBDAT 10 LAST\r\n",
           "MAIL FROM:<a@b> SIZE=10\r\nRCPT TO:<c@d>\r\nXXXX 10 LAST\r\n");
    mb_insp_free(b.in);

    /* With allow-tls STARTTLS passes, and after its 220 nothing is inspected. */
    box_init(&b, MB_ASA_ALLOW_TLS);
    box_start(&b);
    greet(&b);
    expect(&b, SC_DIR_C2S, "STARTTLS\r\n", "STARTTLS\r\n");
    expect(&b, SC_DIR_S2C, "220 2.0.0 Ready\r\n", "220 2.0.0 Ready\r\n");
    expect(&b, SC_DIR_C2S, "TURN\r\n", "TURN\r\n");
    mb_insp_free(b.in);
}

static void test_telnet_a6_each_segment_alone(void **state)
{
    (void)state;
    struct box b;
    box_init(&b, MB_ASA_DEFAULT);
    box_start(&b);
    greet(&b);
    const char *keys[] = {"H", "E", "L", "O", " ", "m", "e", "\r", "\n"};
    char got[64] = "";
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char out[8];
        assert_int_equal(pass(&b, SC_DIR_C2S, keys[i], out), MB_FORWARD);
        strcat(got, out);
    }
    assert_string_equal(got, "XXXX me\r\n"); /* HELO is allowed, but not a letter at a time */
    mb_insp_free(b.in);
}

static void test_limits_a7(void **state)
{
    (void)state;
    struct box b;
    char out[4096], line[700];
    /* A command line over 512 bytes. */
    box_init(&b, MB_ASA_DEFAULT);
    box_start(&b);
    greet(&b);
    memset(line, 'a', sizeof(line));
    memcpy(line, "HELO ", 5);
    strcpy(line + 600, "\r\n");
    assert_int_equal(pass(&b, SC_DIR_C2S, line, out), MB_DROP_CONN);
    assert_non_null(strstr(mb_insp_reason(b.in), "command line"));
    mb_insp_free(b.in);
    /* The 101st RCPT. */
    box_init(&b, MB_ASA_DEFAULT);
    box_start(&b);
    greet(&b);
    for (int i = 0; i < 100; i++)
        assert_int_equal(pass(&b, SC_DIR_C2S, "RCPT TO:<a@b>\r\n", out), MB_FORWARD);
    assert_int_equal(pass(&b, SC_DIR_C2S, "RCPT TO:<a@b>\r\n", out), MB_DROP_CONN);
    mb_insp_free(b.in);
    /* A sender address over 320 bytes. */
    box_init(&b, MB_ASA_DEFAULT);
    box_start(&b);
    greet(&b);
    char mail[400] = "MAIL FROM:<";
    memset(mail + 11, 'x', 330);
    strcpy(mail + 341, "@b>\r\n");
    assert_int_equal(pass(&b, SC_DIR_C2S, mail, out), MB_DROP_CONN);
    mb_insp_free(b.in);
}

/* Runs a DATA exchange and then the given message bytes. */
static enum mb_verdict message(struct box *b, const char *body)
{
    char out[4096];
    greet(b);
    pass(b, SC_DIR_C2S, "DATA\r\n", out);
    pass(b, SC_DIR_S2C, "354 go ahead\r\n", out);
    char copy[4096];
    snprintf(copy, sizeof(copy), "%s", body);
    b->t += MS;
    return mb_insp_segment(b->in, SC_DIR_C2S, (uint8_t *)copy, strlen(copy), b->t);
}

static void test_message_limits_a7(void **state)
{
    (void)state;
    struct box b;
    char big[2100];
    /* A header line over 998 bytes drops the connection. */
    memset(big, 'h', sizeof(big));
    memcpy(big, "X-Long: ", 8);
    strcpy(big + 1200, "\r\n\r\nbody\r\n.\r\n");
    box_init(&b, MB_ASA_DEFAULT);
    box_start(&b);
    assert_int_equal(message(&b, big), MB_DROP_CONN);
    mb_insp_free(b.in);
    /* The same length in the body only: logged by the ASA, not dropped. */
    memcpy(big, "Subject: x\r\n\r\n", 14);
    box_init(&b, MB_ASA_DEFAULT);
    box_start(&b);
    assert_int_equal(message(&b, big), MB_FORWARD);
    mb_insp_free(b.in);
    /* A MIME filename over 255 bytes. */
    char att[600] = "Subject: x\r\n\r\nContent-Disposition: attachment; filename=\"";
    size_t k = strlen(att);
    memset(att + k, 'f', 300);
    strcpy(att + k + 300, "\"\r\n\r\nAAAA\r\n.\r\n");
    box_init(&b, MB_ASA_DEFAULT);
    box_start(&b);
    assert_int_equal(message(&b, att), MB_DROP_CONN);
    mb_insp_free(b.in);
    /* After the end of data, commands are inspected again. */
    box_init(&b, MB_ASA_DEFAULT);
    box_start(&b);
    assert_int_equal(message(&b, "Subject: x\r\n\r\nSTARTTLS in a body\r\n.\r\n"), MB_FORWARD);
    expect(&b, SC_DIR_C2S, "STARTTLS\r\n", "XXXXXXXX\r\n");
    mb_insp_free(b.in);
}

static void test_special_character_a8(void **state)
{
    (void)state;
    struct box b;
    box_init(&b, MB_ASA_DEFAULT);
    box_start(&b);
    greet(&b);
    expect(&b, SC_DIR_C2S, "MAIL FROM:<a|b@example.org>\r\n", "MAIL FROM:<a b@example.org>\r\n");
    expect(&b, SC_DIR_C2S, "HELP a|b\r\n", "HELP a|b\r\n"); /* only in addresses */
    mb_insp_free(b.in);
    box_init(&b, MB_ASA_DEFAULT);
    b.cfg.special_character = false;
    box_start(&b);
    greet(&b);
    expect(&b, SC_DIR_C2S, "RCPT TO:<a|b@x>\r\n", "RCPT TO:<a|b@x>\r\n");
    mb_insp_free(b.in);
}

static void test_pix_p1_p2(void **state)
{
    (void)state;
    struct box b;
    box_init(&b, MB_PIX_NOOP);
    box_start(&b);
    expect(&b, SC_DIR_S2C, "220 mx2 ESMTP\r\n", "220 **2******\r\n");
    expect(&b, SC_DIR_C2S, "EHLO client\r\n", "NOOP client\r\n");
    expect(&b, SC_DIR_C2S, "STARTTLS\r\n", "NOOP    \r\n");
    expect(&b, SC_DIR_C2S, "HELO client\r\n", "HELO client\r\n");
    expect(&b, SC_DIR_C2S, "VRFY x\r\n", "NOOP x\r\n"); /* the PIX allows fewer verbs */
    mb_insp_free(b.in);
}

static void test_pix_p3_split_end_of_data(void **state)
{
    (void)state;
    struct box b;
    char out[256];
    box_init(&b, MB_PIX_NOOP);
    box_start(&b);
    assert_int_equal(message(&b, "Subject: x\r\n\r\nhello\r\n"), MB_FORWARD);
    /* ".\r\n" alone right after: the end of data is split, the PIX loses it. */
    assert_int_equal(pass(&b, SC_DIR_C2S, ".\r\n", out), MB_DROP_PACKET);
    assert_int_equal(pass(&b, SC_DIR_C2S, ".\r\n", out), MB_DROP_PACKET); /* retransmission */
    mb_insp_free(b.in);
    /* Postfix's workaround: the dot much later passes. */
    box_init(&b, MB_PIX_NOOP);
    box_start(&b);
    assert_int_equal(message(&b, "Subject: x\r\n\r\nhello\r\n"), MB_FORWARD);
    b.t += 10000 * MS;
    assert_int_equal(pass(&b, SC_DIR_C2S, ".\r\n", out), MB_FORWARD);
    mb_insp_free(b.in);
    /* Whole in one segment: no problem. */
    box_init(&b, MB_PIX_NOOP);
    box_start(&b);
    assert_int_equal(message(&b, "Subject: x\r\n\r\nhello\r\n.\r\n"), MB_FORWARD);
    mb_insp_free(b.in);
}

static void test_pipelined_replies_pair_with_their_commands(void **state)
{
    (void)state;
    struct box b;
    box_init(&b, MB_ASA_DEFAULT);
    box_start(&b);
    greet(&b);
    expect(&b, SC_DIR_C2S, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
           "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    expect(&b, SC_DIR_S2C, "250 ok\r\n250 ok\r\n354 go\r\n", "250 ok\r\n250 ok\r\n354 go\r\n");
    /* The message is not read as commands. */
    expect(&b, SC_DIR_C2S, "From: x\r\nTURN: y\r\n\r\nbody\r\n.\r\n",
           "From: x\r\nTURN: y\r\n\r\nbody\r\n.\r\n");
    mb_insp_free(b.in);
}

static void test_model_names(void **state)
{
    (void)state;
    for (int m = 0; m < MB__COUNT; m++)
        assert_int_equal(mb_model_parse(mb_model_name((enum mb_model)m)), m);
    assert_int_equal(mb_model_parse("cisco"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_banner_a1_default_masks_all_but_2_and_0),
        cmocka_unit_test(test_banner_a1_variants),
        cmocka_unit_test(test_banner_a2_multiline_loses_its_codes),
        cmocka_unit_test(test_ehlo_keywords_a3_a4),
        cmocka_unit_test(test_verbs_a5),
        cmocka_unit_test(test_telnet_a6_each_segment_alone),
        cmocka_unit_test(test_limits_a7),
        cmocka_unit_test(test_message_limits_a7),
        cmocka_unit_test(test_special_character_a8),
        cmocka_unit_test(test_pix_p1_p2),
        cmocka_unit_test(test_pix_p3_split_end_of_data),
        cmocka_unit_test(test_pipelined_replies_pair_with_their_commands),
        cmocka_unit_test(test_model_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
