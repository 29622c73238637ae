/*
 * The narrow C surface Tessera uses from FFmpeg's libavcodec, libswscale and libavutil.
 *
 * Compiled against the headers installed on the build machine, so struct layouts always
 * match the libraries linked; Rust sees only the opaque handles and the small structs
 * declared in shim.h. Every function returns 0 on success, TSR_AGAIN when more input is
 * needed, TSR_EOF at the end of a drain, or a negative AVERROR, with a message in `err`
 * where one is given.
 */
#include <string.h>
#include <stdio.h>

#include <libavcodec/avcodec.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>

#include "shim.h"

static int fail(int code, const char *what, char *err, int errlen) {
    if (err && errlen > 0) {
        char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
        av_strerror(code, buf, sizeof buf);
        snprintf(err, (size_t)errlen, "%s: %s", what, buf);
    }
    return code < 0 ? code : AVERROR_UNKNOWN;
}

static int fail_msg(const char *what, char *err, int errlen) {
    if (err && errlen > 0) snprintf(err, (size_t)errlen, "%s", what);
    return AVERROR_UNKNOWN;
}

const char *tsr_version(void) { return av_version_info(); }

void tsr_quiet(void) { av_log_set_level(AV_LOG_ERROR); }

/* ---------------------------------------------------------------- decoder */

struct tsr_decoder {
    AVCodecContext *ctx;
    AVPacket *pkt;
    AVFrame *frame;
};

int tsr_decoder_open(int codec, const uint8_t *extradata, int extradata_size, int threads,
                     tsr_decoder **out, char *err, int errlen) {
    enum AVCodecID id = codec == TSR_HEVC ? AV_CODEC_ID_HEVC : AV_CODEC_ID_H264;
    const AVCodec *dec = avcodec_find_decoder(id);
    if (!dec) return fail_msg("this FFmpeg has no decoder for the source codec", err, errlen);
    tsr_decoder *d = av_mallocz(sizeof *d);
    if (!d) return fail(AVERROR(ENOMEM), "decoder", err, errlen);
    d->ctx = avcodec_alloc_context3(dec);
    d->pkt = av_packet_alloc();
    d->frame = av_frame_alloc();
    if (!d->ctx || !d->pkt || !d->frame) {
        tsr_decoder_close(d);
        return fail(AVERROR(ENOMEM), "decoder", err, errlen);
    }
    if (extradata_size > 0) {
        d->ctx->extradata = av_mallocz((size_t)extradata_size + AV_INPUT_BUFFER_PADDING_SIZE);
        if (!d->ctx->extradata) {
            tsr_decoder_close(d);
            return fail(AVERROR(ENOMEM), "decoder", err, errlen);
        }
        memcpy(d->ctx->extradata, extradata, (size_t)extradata_size);
        d->ctx->extradata_size = extradata_size;
    }
    d->ctx->pkt_timebase = (AVRational){1, 90000};
    d->ctx->time_base = (AVRational){1, 90000};
    /* Slice threads add no delay; frame threads would add a frame per thread. */
    d->ctx->thread_count = threads;
    d->ctx->thread_type = FF_THREAD_SLICE;
    int r = avcodec_open2(d->ctx, dec, NULL);
    if (r < 0) {
        tsr_decoder_close(d);
        return fail(r, "opening the decoder", err, errlen);
    }
    *out = d;
    return 0;
}

int tsr_decoder_send(tsr_decoder *d, const uint8_t *data, int size, int64_t pts, int64_t dts, int key,
                     char *err, int errlen) {
    int r;
    if (size <= 0) {
        r = avcodec_send_packet(d->ctx, NULL);
    } else {
        av_packet_unref(d->pkt);
        r = av_new_packet(d->pkt, size);
        if (r < 0) return fail(r, "decoder packet", err, errlen);
        memcpy(d->pkt->data, data, (size_t)size);
        d->pkt->pts = pts;
        d->pkt->dts = dts;
        if (key) d->pkt->flags |= AV_PKT_FLAG_KEY;
        r = avcodec_send_packet(d->ctx, d->pkt);
    }
    if (r == AVERROR(EAGAIN)) return TSR_AGAIN;
    if (r == AVERROR_EOF) return TSR_EOF;
    if (r < 0) return fail(r, "decoding", err, errlen);
    return 0;
}

static void picture_of(const AVFrame *f, tsr_picture *pic) {
    for (int i = 0; i < 4; i++) {
        pic->plane[i] = f->data[i];
        pic->stride[i] = f->linesize[i];
    }
    pic->width = f->width;
    pic->height = f->height;
    pic->format = f->format;
    pic->pts = f->pts;
}

void tsr_frame_picture(const tsr_frame *f, tsr_picture *pic) { picture_of((const AVFrame *)f, pic); }

void tsr_frame_free(tsr_frame *f) {
    AVFrame *frame = (AVFrame *)f;
    av_frame_free(&frame);
}

int tsr_decoder_receive(tsr_decoder *d, tsr_frame **out, char *err, int errlen) {
    av_frame_unref(d->frame);
    int r = avcodec_receive_frame(d->ctx, d->frame);
    if (r == AVERROR(EAGAIN)) return TSR_AGAIN;
    if (r == AVERROR_EOF) return TSR_EOF;
    if (r < 0) return fail(r, "decoding", err, errlen);
    if (d->frame->best_effort_timestamp != AV_NOPTS_VALUE) d->frame->pts = d->frame->best_effort_timestamp;
    AVFrame *f = av_frame_clone(d->frame);
    if (!f) return fail(AVERROR(ENOMEM), "decoded picture", err, errlen);
    *out = (tsr_frame *)f;
    return 0;
}

void tsr_decoder_close(tsr_decoder *d) {
    if (!d) return;
    avcodec_free_context(&d->ctx);
    av_packet_free(&d->pkt);
    av_frame_free(&d->frame);
    av_free(d);
}

/* ---------------------------------------------------------------- scaler */

struct tsr_scaler {
    struct SwsContext *sws;
    int width, height;
    int flags;
};

int tsr_scaler_open(int width, int height, int bicubic, tsr_scaler **out, char *err, int errlen) {
    tsr_scaler *s = av_mallocz(sizeof *s);
    if (!s) return fail(AVERROR(ENOMEM), "scaler", err, errlen);
    s->width = width;
    s->height = height;
    s->flags = bicubic ? SWS_BICUBIC : SWS_BILINEAR;
    *out = s;
    return 0;
}

/* Scales into a new picture of its own, so the result can travel to another thread. */
int tsr_scale(tsr_scaler *s, const tsr_picture *in, tsr_frame **out, char *err, int errlen) {
    s->sws = sws_getCachedContext(s->sws, in->width, in->height, (enum AVPixelFormat)in->format, s->width, s->height,
                                  AV_PIX_FMT_YUV420P, s->flags, NULL, NULL, NULL);
    if (!s->sws) return fail_msg("no conversion from the decoded picture format", err, errlen);
    AVFrame *f = av_frame_alloc();
    if (!f) return fail(AVERROR(ENOMEM), "scaled picture", err, errlen);
    f->width = s->width;
    f->height = s->height;
    f->format = AV_PIX_FMT_YUV420P;
    int r = av_frame_get_buffer(f, 0);
    if (r < 0) {
        av_frame_free(&f);
        return fail(r, "scaled picture", err, errlen);
    }
    const uint8_t *const src[4] = {in->plane[0], in->plane[1], in->plane[2], in->plane[3]};
    const int stride[4] = {in->stride[0], in->stride[1], in->stride[2], in->stride[3]};
    r = sws_scale(s->sws, src, stride, 0, in->height, f->data, f->linesize);
    if (r < 0) {
        av_frame_free(&f);
        return fail(r, "scaling", err, errlen);
    }
    f->pts = in->pts;
    *out = (tsr_frame *)f;
    return 0;
}

void tsr_scaler_close(tsr_scaler *s) {
    if (!s) return;
    sws_freeContext(s->sws);
    av_free(s);
}

/* ---------------------------------------------------------------- H.264 encoder (libx264) */

struct tsr_encoder {
    AVCodecContext *ctx;
    AVFrame *frame;
    AVPacket *pkt;
};

int tsr_encoder_open(const tsr_encoder_config *c, tsr_encoder **out, char *err, int errlen) {
    const AVCodec *enc = avcodec_find_encoder_by_name("libx264");
    if (!enc) return fail_msg("this FFmpeg was built without libx264", err, errlen);
    tsr_encoder *e = av_mallocz(sizeof *e);
    if (!e) return fail(AVERROR(ENOMEM), "encoder", err, errlen);
    e->ctx = avcodec_alloc_context3(enc);
    e->frame = av_frame_alloc();
    e->pkt = av_packet_alloc();
    if (!e->ctx || !e->frame || !e->pkt) {
        tsr_encoder_close(e);
        return fail(AVERROR(ENOMEM), "encoder", err, errlen);
    }
    AVCodecContext *ctx = e->ctx;
    ctx->width = c->width;
    ctx->height = c->height;
    ctx->pix_fmt = AV_PIX_FMT_YUV420P;
    ctx->time_base = (AVRational){1, 90000};
    ctx->framerate = (AVRational){c->fps_num, c->fps_den};
    ctx->sample_aspect_ratio = (AVRational){1, 1};
    ctx->bit_rate = c->bitrate;
    ctx->rc_max_rate = c->maxrate;
    ctx->rc_buffer_size = (int)c->bufsize;
    ctx->gop_size = c->keyint;
    ctx->keyint_min = c->keyint;
    ctx->thread_count = c->threads;
    int r;
    if (c->preset && *c->preset && (r = av_opt_set(ctx->priv_data, "preset", c->preset, 0)) < 0)
        return tsr_encoder_close(e), fail(r, "x264 preset", err, errlen);
    if (c->tune && *c->tune && (r = av_opt_set(ctx->priv_data, "tune", c->tune, 0)) < 0)
        return tsr_encoder_close(e), fail(r, "x264 tune", err, errlen);
    if (c->profile && *c->profile && (r = av_opt_set(ctx->priv_data, "profile", c->profile, 0)) < 0)
        return tsr_encoder_close(e), fail(r, "x264 profile", err, errlen);
    if ((r = av_opt_set_int(ctx->priv_data, "forced-idr", 1, 0)) < 0)
        return tsr_encoder_close(e), fail(r, "x264 forced-idr", err, errlen);
    /* Keyframes only where asked (every segment boundary is a forced IDR): no scene cuts. */
    char params[1024];
    snprintf(params, sizeof params, "scenecut=0%s%s", c->params && *c->params ? ":" : "", c->params ? c->params : "");
    if ((r = av_opt_set(ctx->priv_data, "x264-params", params, 0)) < 0)
        return tsr_encoder_close(e), fail(r, "x264 params", err, errlen);
    r = avcodec_open2(ctx, enc, NULL);
    if (r < 0) {
        tsr_encoder_close(e);
        return fail(r, "opening libx264", err, errlen);
    }
    e->frame->width = c->width;
    e->frame->height = c->height;
    e->frame->format = AV_PIX_FMT_YUV420P;
    *out = e;
    return 0;
}

int tsr_encoder_send(tsr_encoder *e, const tsr_picture *pic, int force_idr, char *err, int errlen) {
    int r;
    if (!pic) {
        r = avcodec_send_frame(e->ctx, NULL);
    } else {
        if (pic->width != e->ctx->width || pic->height != e->ctx->height || pic->format != AV_PIX_FMT_YUV420P)
            return fail_msg("picture does not match the encoder", err, errlen);
        /* The planes are borrowed for the call: libx264 copies the picture in. */
        for (int i = 0; i < 4; i++) {
            e->frame->data[i] = (uint8_t *)pic->plane[i];
            e->frame->linesize[i] = pic->stride[i];
        }
        e->frame->pts = pic->pts;
        e->frame->pict_type = force_idr ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
        r = avcodec_send_frame(e->ctx, e->frame);
        for (int i = 0; i < 4; i++) e->frame->data[i] = NULL;
    }
    if (r == AVERROR(EAGAIN)) return TSR_AGAIN;
    if (r == AVERROR_EOF) return TSR_EOF;
    if (r < 0) return fail(r, "encoding", err, errlen);
    return 0;
}

/* Sends a reference-counted picture: libavcodec takes a reference, no copy. */
int tsr_encoder_send_frame(tsr_encoder *e, const tsr_frame *frame, int force_idr, char *err, int errlen) {
    const AVFrame *src = (const AVFrame *)frame;
    if (src->width != e->ctx->width || src->height != e->ctx->height || src->format != AV_PIX_FMT_YUV420P)
        return fail_msg("picture does not match the encoder", err, errlen);
    AVFrame *f = av_frame_clone(src);
    if (!f) return fail(AVERROR(ENOMEM), "encoder picture", err, errlen);
    f->pict_type = force_idr ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
    int r = avcodec_send_frame(e->ctx, f);
    av_frame_free(&f);
    if (r == AVERROR(EAGAIN)) return TSR_AGAIN;
    if (r == AVERROR_EOF) return TSR_EOF;
    if (r < 0) return fail(r, "encoding", err, errlen);
    return 0;
}

int tsr_encoder_receive(tsr_encoder *e, tsr_packet *pkt, char *err, int errlen) {
    av_packet_unref(e->pkt);
    int r = avcodec_receive_packet(e->ctx, e->pkt);
    if (r == AVERROR(EAGAIN)) return TSR_AGAIN;
    if (r == AVERROR_EOF) return TSR_EOF;
    if (r < 0) return fail(r, "encoding", err, errlen);
    pkt->data = e->pkt->data;
    pkt->size = e->pkt->size;
    pkt->pts = e->pkt->pts;
    pkt->dts = e->pkt->dts;
    pkt->key = (e->pkt->flags & AV_PKT_FLAG_KEY) != 0;
    return 0;
}

void tsr_encoder_close(tsr_encoder *e) {
    if (!e) return;
    avcodec_free_context(&e->ctx);
    av_frame_free(&e->frame);
    av_packet_free(&e->pkt);
    av_free(e);
}

/* ---------------------------------------------------------------- AAC encoder (test source) */

struct tsr_aac {
    AVCodecContext *ctx;
    AVFrame *frame;
    AVPacket *pkt;
};

int tsr_aac_open(int sample_rate, int channels, int64_t bitrate, tsr_aac **out, char *err, int errlen) {
    const AVCodec *enc = avcodec_find_encoder(AV_CODEC_ID_AAC);
    if (!enc) return fail_msg("this FFmpeg has no AAC encoder", err, errlen);
    tsr_aac *a = av_mallocz(sizeof *a);
    if (!a) return fail(AVERROR(ENOMEM), "AAC encoder", err, errlen);
    a->ctx = avcodec_alloc_context3(enc);
    a->frame = av_frame_alloc();
    a->pkt = av_packet_alloc();
    if (!a->ctx || !a->frame || !a->pkt) {
        tsr_aac_close(a);
        return fail(AVERROR(ENOMEM), "AAC encoder", err, errlen);
    }
    a->ctx->sample_rate = sample_rate;
    a->ctx->sample_fmt = AV_SAMPLE_FMT_FLTP;
    a->ctx->bit_rate = bitrate;
    a->ctx->time_base = (AVRational){1, sample_rate};
    a->ctx->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
#if LIBAVUTIL_VERSION_INT >= AV_VERSION_INT(57, 24, 100)
    av_channel_layout_default(&a->ctx->ch_layout, channels);
#else
    a->ctx->channels = channels;
    a->ctx->channel_layout = av_get_default_channel_layout(channels);
#endif
    int r = avcodec_open2(a->ctx, enc, NULL);
    if (r < 0) {
        tsr_aac_close(a);
        return fail(r, "opening the AAC encoder", err, errlen);
    }
    a->frame->nb_samples = a->ctx->frame_size;
    a->frame->format = AV_SAMPLE_FMT_FLTP;
    a->frame->sample_rate = sample_rate;
#if LIBAVUTIL_VERSION_INT >= AV_VERSION_INT(57, 24, 100)
    av_channel_layout_copy(&a->frame->ch_layout, &a->ctx->ch_layout);
#else
    a->frame->channels = channels;
    a->frame->channel_layout = a->ctx->channel_layout;
#endif
    r = av_frame_get_buffer(a->frame, 0);
    if (r < 0) {
        tsr_aac_close(a);
        return fail(r, "AAC frame", err, errlen);
    }
    *out = a;
    return 0;
}

int tsr_aac_frame_size(const tsr_aac *a) { return a->ctx->frame_size; }

int tsr_aac_config(const tsr_aac *a, const uint8_t **data, int *size) {
    *data = a->ctx->extradata;
    *size = a->ctx->extradata_size;
    return 0;
}

int tsr_aac_send(tsr_aac *a, const float *const *planes, int channels, int64_t pts, char *err, int errlen) {
    int r = av_frame_make_writable(a->frame);
    if (r < 0) return fail(r, "AAC frame", err, errlen);
    for (int c = 0; c < channels; c++)
        memcpy(a->frame->data[c], planes[c], sizeof(float) * (size_t)a->frame->nb_samples);
    a->frame->pts = pts;
    r = avcodec_send_frame(a->ctx, a->frame);
    if (r == AVERROR(EAGAIN)) return TSR_AGAIN;
    if (r < 0) return fail(r, "AAC encoding", err, errlen);
    return 0;
}

int tsr_aac_receive(tsr_aac *a, tsr_packet *pkt, char *err, int errlen) {
    av_packet_unref(a->pkt);
    int r = avcodec_receive_packet(a->ctx, a->pkt);
    if (r == AVERROR(EAGAIN)) return TSR_AGAIN;
    if (r == AVERROR_EOF) return TSR_EOF;
    if (r < 0) return fail(r, "AAC encoding", err, errlen);
    pkt->data = a->pkt->data;
    pkt->size = a->pkt->size;
    pkt->pts = a->pkt->pts;
    pkt->dts = a->pkt->dts;
    pkt->key = 1;
    return 0;
}

void tsr_aac_close(tsr_aac *a) {
    if (!a) return;
    avcodec_free_context(&a->ctx);
    av_frame_free(&a->frame);
    av_packet_free(&a->pkt);
    av_free(a);
}
